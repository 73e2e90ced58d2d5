# zookeeper-env.sh: sourced by bin/zookeeper-*.sh. Finds Java and Debian's ZooKeeper 3.8 jars
# (package `zookeeper`, which pulls in a Java runtime) and sets:
#   ZK_JAVA       the java binary ($JAVA_HOME/bin/java when JAVA_HOME is set, as Kafka's scripts)
#   ZK_CLASSPATH  zookeeper.jar (its manifest names its own dependencies) + the log4j 1.2 binding
# ZOOKEEPER_JAVA_DIR overrides where the jars are looked for (default /usr/share/java).
# On a missing piece it prints what to install and exits 1.
zk_env_die() {
    echo "$(basename "$0"): $*" >&2
    exit 1
}
if [ -n "${JAVA_HOME:-}" ]; then
    ZK_JAVA="$JAVA_HOME/bin/java"
    [ -x "$ZK_JAVA" ] || zk_env_die "Java not found at $ZK_JAVA (JAVA_HOME=$JAVA_HOME); unset JAVA_HOME or install a JRE (Debian: apt-get install default-jre-headless)"
else
    ZK_JAVA=$(command -v java 2>/dev/null) \
        || zk_env_die "Java not found on PATH; ZooKeeper runs on a JVM (Debian: apt-get install zookeeper, which brings a JRE)"
fi
zk_jar_dir=${ZOOKEEPER_JAVA_DIR:-/usr/share/java}
for zk_jar in zookeeper.jar slf4j-log4j12.jar log4j-1.2.jar; do
    [ -f "$zk_jar_dir/$zk_jar" ] \
        || zk_env_die "$zk_jar_dir/$zk_jar not found; ZooKeeper is not installed (Debian: apt-get install zookeeper)"
done
ZK_CLASSPATH="$zk_jar_dir/zookeeper.jar:$zk_jar_dir/slf4j-log4j12.jar:$zk_jar_dir/log4j-1.2.jar"
unset zk_jar zk_jar_dir

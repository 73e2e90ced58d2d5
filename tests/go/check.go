// check drives a gregor broker with franz-go (tests/integration/test_franz_go.py).
//
//	check BOOTSTRAP produce-consume|admin [count]
//	check BOOTSTRAP cluster-roundtrip count topic consume-bootstrap prefix
//
// produce-consume: creates a 3-partition topic, produces keyed records with headers through
// franz-go's default producer (idempotent, acks=all) in zstd batches to explicit partitions,
// consumes them in a consumer group from the start, checks keys/values/headers/offsets per
// partition and the exact count, commits, and compares the committed offsets (OffsetFetch)
// and the end offsets (ListOffsets) with what was produced.
// admin: metadata, CreateTopics (also an existing one), topic configs, CreatePartitions,
// ListGroups/DescribeGroups of a live group, DeleteTopics.
// eos-loop INPUT OUTPUT GROUP TRANSACTIONAL_ID SEED (tests/integration/test_eos_loops.py): franz-go's
// exactly-once consume-transform-produce loop, a GroupTransactSession reading INPUT in GROUP with
// read_committed and writing each record to OUTPUT (same key, value "t:" + value), at most 30
// records per transaction ended with End(TryCommit); a short random pause after the flush keeps
// transactions open so that a kill -9 lands inside one. Prints "committed N total=T" per
// commit, "aborted" per abort; runs until killed, exits 3 with "fatal ..." when End fails.
// cluster-roundtrip: an existing multi-partition topic on a cluster: the default producer,
// seeded with BOOTSTRAP, sends keyed records to partition i % P; a direct consumer (no group)
// seeded with another broker reads every partition from the start up to its end offset; the
// records with this run's prefix must be exactly the acked ones (partition, offset, key,
// value), once each, in order.
// Prints one "OK <mode> k=v ..." line and exits 0, or "FAIL: ..." and exits 1.
// GREGOR_TLS_CA=ca.pem connects over TLS trusting that CA; GREGOR_TLS_CERT / GREGOR_TLS_KEY add
// a client certificate (test_tls.py). GREGOR_SASL_MECHANISM=PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 with
// GREGOR_SASL_USER / GREGOR_SASL_PASSWORD authenticate with SASL (test_sasl.py).
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

type failure string

func check(ok bool, format string, args ...any) {
	if !ok {
		panic(failure(fmt.Sprintf(format, args...)))
	}
}

func must[T any](v T, err error) T {
	check(err == nil, "%v", err)
	return v
}

var suffix = fmt.Sprintf("%d-%d", time.Now().UnixNano(), os.Getpid())

func tlsConfig() *tls.Config {
	ca := os.Getenv("GREGOR_TLS_CA")
	if ca == "" {
		return nil
	}
	pool := x509.NewCertPool()
	check(pool.AppendCertsFromPEM(must(os.ReadFile(ca))), "no certificate in %s", ca)
	cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if cert := os.Getenv("GREGOR_TLS_CERT"); cert != "" {
		cfg.Certificates = []tls.Certificate{must(tls.LoadX509KeyPair(cert, os.Getenv("GREGOR_TLS_KEY")))}
	}
	return cfg
}

func newClient(bootstrap string, opts ...kgo.Opt) *kgo.Client {
	base := []kgo.Opt{kgo.SeedBrokers(bootstrap), kgo.ClientID("gregor-franz-check"),
		kgo.RequestTimeoutOverhead(10 * time.Second)}
	if cfg := tlsConfig(); cfg != nil {
		base = append(base, kgo.DialTLSConfig(cfg))
	}
	user, pass := os.Getenv("GREGOR_SASL_USER"), os.Getenv("GREGOR_SASL_PASSWORD")
	switch os.Getenv("GREGOR_SASL_MECHANISM") {
	case "PLAIN":
		base = append(base, kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism()))
	case "SCRAM-SHA-256":
		base = append(base, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha256Mechanism()))
	case "SCRAM-SHA-512":
		base = append(base, kgo.SASL(scram.Auth{User: user, Pass: pass}.AsSha512Mechanism()))
	}
	return must(kgo.NewClient(append(base, opts...)...))
}

func produceConsume(ctx context.Context, bootstrap string, count int) string {
	const partitions = 3
	topic, group := "go-pc-"+suffix, "go-group-"+suffix
	admin := kadm.NewClient(newClient(bootstrap))
	defer admin.Close()
	created := must(admin.CreateTopics(ctx, partitions, 1, nil, topic))
	check(created[topic].Err == nil, "CreateTopics %s: %v", topic, created[topic].Err)

	producer := newClient(bootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchCompression(kgo.ZstdCompression()), kgo.ProducerLinger(5*time.Millisecond))
	expected := make([][]*kgo.Record, partitions)
	records := make([]*kgo.Record, 0, count)
	for i := 0; i < count; i++ {
		r := &kgo.Record{Topic: topic, Partition: int32(i % partitions),
			Key:   []byte("key-" + strconv.Itoa(i)),
			Value: []byte("value-" + strconv.Itoa(i) + "-" + strings.Repeat("x", i%50)),
			Headers: []kgo.RecordHeader{{Key: "seq", Value: []byte(strconv.Itoa(i))},
				{Key: "src", Value: []byte("franz-go")}}}
		records = append(records, r)
		expected[r.Partition] = append(expected[r.Partition], r)
	}
	perr := producer.ProduceSync(ctx, records...).FirstErr()
	check(perr == nil, "produce: %v", perr)
	for _, r := range records {
		check(r.Offset >= 0 && int(r.Offset) < len(expected[r.Partition]),
			"produce: record %s got offset %d on partition %d", r.Key, r.Offset, r.Partition)
	}
	producer.Close()

	consumer := newClient(bootstrap, kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(500*time.Millisecond))
	got := make([][]*kgo.Record, partitions)
	n := 0
	deadline := time.Now().Add(60 * time.Second)
	for n < count {
		check(time.Now().Before(deadline), "consumer timed out: got %d of %d records", n, count)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fetches := consumer.PollFetches(pctx)
		cancel()
		fetches.EachError(func(t string, p int32, err error) {
			check(errors.Is(err, context.DeadlineExceeded), "fetch %s-%d: %v", t, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			got[r.Partition] = append(got[r.Partition], r)
			n++
		})
	}
	check(consumer.CommitUncommittedOffsets(ctx) == nil, "commit failed")
	// Anything arriving now is a duplicate or a stray record.
	pctx, cancel := context.WithTimeout(ctx, 1500*time.Millisecond)
	extra := consumer.PollFetches(pctx).NumRecords()
	cancel()
	check(extra == 0, "%d records after all %d were consumed", extra, count)

	for p := 0; p < partitions; p++ {
		check(len(got[p]) == len(expected[p]), "partition %d: consumed %d, expected %d", p,
			len(got[p]), len(expected[p]))
		for i, e := range expected[p] {
			g := got[p][i]
			where := fmt.Sprintf("partition %d #%d (offset %d)", p, i, g.Offset)
			check(g.Offset == int64(i), "%s: expected offset %d", where, i)
			check(string(g.Key) == string(e.Key), "%s: key %q, expected %q", where, g.Key, e.Key)
			check(string(g.Value) == string(e.Value), "%s: value %q, expected %q", where, g.Value, e.Value)
			check(len(g.Headers) == 2 && g.Headers[0].Key == "seq" &&
				string(g.Headers[0].Value) == string(e.Headers[0].Value) &&
				g.Headers[1].Key == "src" && string(g.Headers[1].Value) == "franz-go",
				"%s: headers %v, expected %v", where, g.Headers, e.Headers)
			check(g.ProducerID >= 0 && g.ProducerEpoch >= 0,
				"%s: producer id %d epoch %d: franz-go's idempotent producer set none", where,
				g.ProducerID, g.ProducerEpoch)
		}
	}
	consumer.Close() // leaves the group

	committed := must(admin.FetchOffsets(ctx, group))
	ends := must(admin.ListEndOffsets(ctx, topic))
	starts := must(admin.ListStartOffsets(ctx, topic))
	for p := int32(0); p < partitions; p++ {
		c, ok := committed.Lookup(topic, p)
		check(ok && c.Err == nil && c.At == int64(len(expected[p])),
			"group %s %s-%d: committed %+v, expected %d", group, topic, p, c, len(expected[p]))
		e, _ := ends.Lookup(topic, p)
		s, _ := starts.Lookup(topic, p)
		check(e.Err == nil && e.Offset == int64(len(expected[p])) && s.Err == nil && s.Offset == 0,
			"ListOffsets %s-%d: start %d end %d, expected 0/%d", topic, p, s.Offset, e.Offset,
			len(expected[p]))
	}
	per := make([]string, partitions)
	for p := range got {
		per[p] = strconv.Itoa(len(got[p]))
	}
	return fmt.Sprintf("produced=%d consumed=%d partitions=%d per_partition=%s compression=zstd",
		len(records), n, partitions, strings.Join(per, ","))
}

func adminCheck(ctx context.Context, bootstrap string) string {
	t1, t2, group := "go-admin-a-"+suffix, "go-admin-b-"+suffix, "go-admin-group-"+suffix
	admin := kadm.NewClient(newClient(bootstrap))
	defer admin.Close()
	// kadm answers ListTopics from franz-go's metadata cache while it is younger than
	// MetadataMinAge (5 s), also against Kafka; asking for the authorized operations (KIP-430)
	// sends each listing to the broker.
	fresh := kadm.WithAuthorizedOps(ctx)

	brokers := must(admin.ListBrokers(ctx))
	check(len(brokers) == 1 && fmt.Sprintf("%s:%d", brokers[0].Host, brokers[0].Port) == bootstrap,
		"ListBrokers: %+v, expected one at %s", brokers, bootstrap)

	retention := "3600000"
	res := must(admin.CreateTopics(ctx, 2, 1, map[string]*string{"retention.ms": &retention}, t1))
	check(res[t1].Err == nil, "CreateTopics %s: %v", t1, res[t1].Err)
	res = must(admin.CreateTopics(ctx, 1, 1, nil, t2))
	check(res[t2].Err == nil, "CreateTopics %s: %v", t2, res[t2].Err)
	res = must(admin.CreateTopics(ctx, 1, 1, nil, t2))
	check(errors.Is(res[t2].Err, kerr.TopicAlreadyExists), "CreateTopics of existing %s: %v",
		t2, res[t2].Err)

	topics := must(admin.ListTopics(fresh))
	check(topics.Has(t1) && topics.Has(t2), "ListTopics misses %s/%s: %v", t1, t2, topics.Names())
	listed := len(topics.Names())
	check(len(topics[t1].Partitions) == 2 && len(topics[t2].Partitions) == 1,
		"ListTopics partitions: %d/%d", len(topics[t1].Partitions), len(topics[t2].Partitions))
	for _, p := range topics[t1].Partitions {
		check(p.Err == nil && p.Leader == brokers[0].NodeID, "%s-%d: leader %d err %v", t1,
			p.Partition, p.Leader, p.Err)
	}

	cfgs := must(admin.DescribeTopicConfigs(ctx, t1))
	rc := must(cfgs.On(t1, nil))
	found := ""
	for _, c := range rc.Configs {
		if c.Key == "retention.ms" && c.Value != nil {
			found = *c.Value
		}
	}
	check(rc.Err == nil && found == retention, "DescribeTopicConfigs %s: retention.ms=%q", t1, found)

	cp := must(admin.CreatePartitions(ctx, 3, t2)) // add 3: 4 in all
	check(cp[t2].Err == nil, "CreatePartitions %s: %v", t2, cp[t2].Err)
	after := 0
	for i := 0; i < 50 && after != 4; i++ {
		md := must(admin.ListTopics(fresh, t2))
		after = len(md[t2].Partitions)
		if after != 4 {
			time.Sleep(200 * time.Millisecond)
		}
	}
	check(after == 4, "CreatePartitions %s: metadata shows %d partitions, expected 4", t2, after)

	// A live group: one member consuming t1 shows up in ListGroups and DescribeGroups.
	member := newClient(bootstrap, kgo.ConsumerGroup(group), kgo.ConsumeTopics(t1),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var described kadm.DescribedGroup
	for i := 0; i < 100; i++ {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		member.PollFetches(pctx)
		cancel()
		dg := must(admin.DescribeGroups(ctx, group))
		described = dg[group]
		if described.State == "Stable" && len(described.Members) == 1 {
			break
		}
	}
	check(described.Err == nil && described.State == "Stable" && len(described.Members) == 1 &&
		described.Protocol == "cooperative-sticky",
		"DescribeGroups %s: state %q members %d protocol %q err %v", group, described.State,
		len(described.Members), described.Protocol, described.Err)
	groups := must(admin.ListGroups(ctx))
	_, inList := groups[group]
	check(inList, "ListGroups misses %s: %v", group, groups.Groups())
	member.Close()

	del := must(admin.DeleteTopics(ctx, t1, t2))
	for _, t := range []string{t1, t2} {
		r, _ := del.On(t, nil)
		check(r.Err == nil, "DeleteTopics %s: %v", t, r.Err)
	}
	remaining := 0
	for i := 0; i < 50; i++ {
		topics = must(admin.ListTopics(fresh))
		remaining = len(topics.Names())
		if !topics.Has(t1) && !topics.Has(t2) {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	check(!topics.Has(t1) && !topics.Has(t2), "DeleteTopics: still listed: %v", topics.Names())
	return fmt.Sprintf("created=2 listed=%d partitions_after=%d deleted=2 remaining=%d group_state=%s",
		listed, after, remaining, described.State)
}

func clusterRoundtrip(ctx context.Context, bootstrap string, count int, topic, consumeFrom,
	prefix string) string {
	admin := kadm.NewClient(newClient(consumeFrom))
	defer admin.Close()
	md := must(admin.ListTopics(ctx, topic))
	partitions := len(md[topic].Partitions)
	check(md[topic].Err == nil && partitions > 1, "%s: %d partitions, err %v", topic, partitions,
		md[topic].Err)

	producer := newClient(bootstrap, kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond))
	records := make([]*kgo.Record, 0, count)
	for i := 0; i < count; i++ {
		records = append(records, &kgo.Record{Topic: topic, Partition: int32(i % partitions),
			Key: []byte(prefix + "-k" + strconv.Itoa(i)), Value: []byte(prefix + "-value-" + strconv.Itoa(i))})
	}
	perr := producer.ProduceSync(ctx, records...).FirstErr()
	check(perr == nil, "produce: %v", perr)
	producer.Close()
	acked := map[string]*kgo.Record{}
	for _, r := range records {
		check(r.Offset >= 0, "produce: record %s has no offset", r.Key)
		acked[fmt.Sprintf("%d/%d", r.Partition, r.Offset)] = r
	}

	ends := must(admin.ListEndOffsets(ctx, topic))
	want := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		check(o.Err == nil, "ListEndOffsets %s-%d: %v", topic, o.Partition, o.Err)
		if o.Offset > 0 {
			want[o.Partition] = o.Offset
		}
	})
	starts := map[string]map[int32]kgo.Offset{topic: {}}
	for p := int32(0); p < int32(partitions); p++ {
		starts[topic][p] = kgo.NewOffset().AtStart()
	}
	consumer := newClient(consumeFrom, kgo.ConsumePartitions(starts), kgo.FetchMaxWait(500*time.Millisecond))
	defer consumer.Close()
	next := map[int32]int64{}
	got, others := 0, 0
	deadline := time.Now().Add(60 * time.Second)
	for len(want) > 0 {
		check(time.Now().Before(deadline), "consumer timed out: partitions left %v", want)
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		fetches := consumer.PollFetches(pctx)
		cancel()
		fetches.EachError(func(t string, p int32, err error) {
			check(errors.Is(err, context.DeadlineExceeded), "fetch %s-%d: %v", t, p, err)
		})
		fetches.EachRecord(func(r *kgo.Record) {
			check(r.Offset == next[r.Partition], "partition %d: offset %d, expected %d", r.Partition,
				r.Offset, next[r.Partition])
			next[r.Partition] = r.Offset + 1
			if next[r.Partition] >= want[r.Partition] {
				delete(want, r.Partition)
			}
			if !strings.HasPrefix(string(r.Value), prefix+"-value-") {
				others++
				return
			}
			k := fmt.Sprintf("%d/%d", r.Partition, r.Offset)
			s, ok := acked[k]
			check(ok, "read %s at %s: not acked there (or read twice)", r.Value, k)
			check(string(s.Key) == string(r.Key) && string(s.Value) == string(r.Value),
				"at %s: read %s=%s, acked %s=%s", k, r.Key, r.Value, s.Key, s.Value)
			delete(acked, k)
			got++
		})
	}
	check(len(acked) == 0, "%d acked records never read", len(acked))
	return fmt.Sprintf("produced=%d consumed=%d others=%d partitions=%d", count, got, others, partitions)
}

// eosLoop is franz-go's documented EOS pattern (examples/transactions/eos): poll, Begin, produce
// through an aborting-first-error promise, End(TryCommit) unless a produce failed.
func eosLoop(bootstrap, input, output, group, txnID string, seed int64) {
	ctx := context.Background()
	rng := rand.New(rand.NewSource(seed))
	sess := must(kgo.NewGroupTransactSession(kgo.SeedBrokers(bootstrap),
		kgo.ClientID("gregor-franz-eos"), kgo.TransactionalID(txnID),
		kgo.TransactionTimeout(10*time.Second), kgo.DefaultProduceTopic(output),
		kgo.ConsumerGroup(group), kgo.ConsumeTopics(input),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.RequireStableFetchOffsets(),
		kgo.SessionTimeout(6*time.Second), kgo.HeartbeatInterval(500*time.Millisecond),
		kgo.ProducerLinger(2*time.Millisecond)))
	defer sess.Close()
	fmt.Println("started")
	total := 0
	for {
		fetches := sess.PollRecords(ctx, 30)
		if fetches.IsClientClosed() {
			return
		}
		fetches.EachError(func(t string, p int32, err error) {
			fmt.Printf("fetch error %s[%d]: %v\n", t, p, err)
		})
		if fetches.NumRecords() == 0 {
			continue
		}
		if err := sess.Begin(); err != nil {
			fmt.Printf("fatal Begin: %v\n", err)
			os.Exit(3)
		}
		e := kgo.AbortingFirstErrPromise(sess.Client())
		n := 0
		fetches.EachRecord(func(r *kgo.Record) {
			n++
			sess.Produce(ctx, &kgo.Record{Key: r.Key, Value: append([]byte("t:"), r.Value...)},
				e.Promise())
		})
		if err := sess.Client().Flush(ctx); err != nil {
			fmt.Printf("fatal Flush: %v\n", err)
			os.Exit(3)
		}
		time.Sleep(time.Duration(rng.Int63n(int64(80 * time.Millisecond))))
		committed, err := sess.End(ctx, e.Err() == nil)
		if err != nil {
			fmt.Printf("fatal End: %v (produce: %v)\n", err, e.Err())
			os.Exit(3)
		}
		if committed {
			total += n
			fmt.Printf("committed %d total=%d\n", n, total)
		} else {
			fmt.Printf("aborted (produce: %v)\n", e.Err())
		}
	}
}

func main() {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: check BOOTSTRAP produce-consume|admin [count]")
		os.Exit(2)
	}
	bootstrap, mode := os.Args[1], os.Args[2]
	if mode == "eos-loop" {
		if len(os.Args) != 8 {
			fmt.Fprintln(os.Stderr, "usage: check BOOTSTRAP eos-loop INPUT OUTPUT GROUP TXNID SEED")
			os.Exit(2)
		}
		seed, err := strconv.ParseInt(os.Args[7], 10, 64)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		eosLoop(bootstrap, os.Args[3], os.Args[4], os.Args[5], os.Args[6], seed)
		return
	}
	count := 2000
	if len(os.Args) > 3 {
		count = must(strconv.Atoi(os.Args[3]))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	defer func() {
		if r := recover(); r != nil {
			if f, ok := r.(failure); ok {
				fmt.Println("FAIL: " + string(f))
				os.Exit(1)
			}
			panic(r)
		}
	}()
	var line string
	switch mode {
	case "produce-consume":
		line = produceConsume(ctx, bootstrap, count)
	case "admin":
		line = adminCheck(ctx, bootstrap)
	case "cluster-roundtrip":
		check(len(os.Args) == 7, "cluster-roundtrip count topic consume-bootstrap prefix")
		line = clusterRoundtrip(ctx, bootstrap, count, os.Args[4], os.Args[5], os.Args[6])
	default:
		fmt.Fprintln(os.Stderr, "unknown mode "+mode)
		os.Exit(2)
	}
	fmt.Printf("OK %s %s\n", mode, line)
}

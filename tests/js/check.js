#!/usr/bin/env node
// Drives a gregor broker with kafkajs 2.2.4 (tests/integration/test_kafkajs.py).
//
//   node check.js BOOTSTRAP [produce-consume|admin|all] [count]
//
// produce-consume: creates a topic with several partitions, produces keyed records with headers
//   in gzip-compressed batches (acks=-1), consumes them with a consumer group from the
//   beginning and checks keys/values/headers/order per partition, the exact count, the
//   committed group offsets (OffsetFetch) and the topic offsets (ListOffsets).
// admin: createTopics (incl. an existing one), listTopics, fetchTopicMetadata, describeConfigs,
//   createPartitions, deleteTopics, describeCluster.
// transactions: a transactional producer commits 5 records with a group's offset
//   (sendOffsets: AddOffsetsToTxn + TxnOffsetCommit) and aborts 3 more; a read_committed
//   consumer sees the 5 only, and the group's committed offset is the transaction's.
// Prints "OK <mode> ..." lines and exits 0, or prints "FAIL: ..." and exits 1.
'use strict'

process.env.KAFKAJS_NO_PARTITIONER_WARNING = '1'
const { Kafka, CompressionTypes, logLevel } = require('kafkajs')

const bootstrap = process.argv[2]
const mode = process.argv[3] || 'all'
const count = parseInt(process.argv[4] || '2000', 10)
if (!bootstrap) {
  console.error('usage: node check.js BOOTSTRAP [produce-consume|admin|all] [count]')
  process.exit(2)
}

class CheckFailed extends Error {}
function check (cond, msg) {
  if (!cond) throw new CheckFailed(msg)
}

const kafka = new Kafka({
  clientId: 'gregor-kafkajs-check',
  brokers: [bootstrap],
  logLevel: process.env.KAFKAJS_LOG_LEVEL ? logLevel[process.env.KAFKAJS_LOG_LEVEL] : logLevel.ERROR,
  retry: { retries: 5 },
  connectionTimeout: 5000,
  requestTimeout: 30000
})

const suffix = `${Date.now()}-${process.pid}`
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function produceConsume () {
  const topic = `js-pc-${suffix}`
  const groupId = `js-group-${suffix}`
  const partitions = 3
  const admin = kafka.admin()
  await admin.connect()
  try {
    check(await admin.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true }) === true,
      `createTopics ${topic} returned false`)

    // Produce: explicit partition (so the expected order per partition is known), key, headers.
    const producer = kafka.producer({ allowAutoTopicCreation: false })
    await producer.connect()
    const expected = Array.from({ length: partitions }, () => [])
    const perSend = 100
    let acked = 0
    for (let base = 0; base < count; base += perSend) {
      const messages = []
      for (let i = base; i < Math.min(count, base + perSend); i++) {
        const m = {
          partition: i % partitions,
          key: `key-${i}`,
          value: `value-${i}-${'x'.repeat(i % 50)}`,
          headers: { seq: String(i), src: 'kafkajs' }
        }
        messages.push(m)
        expected[m.partition].push(m)
      }
      const res = await producer.send({ topic, messages, acks: -1, compression: CompressionTypes.GZIP })
      for (const r of res) {
        check(r.errorCode === 0, `produce to ${r.topicName}-${r.partition}: error ${r.errorCode}`)
        check(r.topicName === topic, `produce answered for topic ${r.topicName}`)
      }
      acked += messages.length
    }
    await producer.disconnect()

    // Consume with a group from the beginning (auto-commit on).
    const got = Array.from({ length: partitions }, () => [])
    let n = 0
    const consumer = kafka.consumer({ groupId, maxWaitTimeInMs: 500, sessionTimeout: 30000 })
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    let done
    const allIn = new Promise((resolve) => { done = resolve })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        got[partition].push(message)
        n++
        if (n >= count) done()
      }
    })
    const timeout = sleep(60000).then(() => 'timeout')
    const r = await Promise.race([allIn, timeout])
    check(r !== 'timeout', `consumer timed out: got ${n} of ${count} records`)
    await sleep(1500) // anything arriving now is a duplicate or a stray record
    await consumer.stop() // commits the resolved offsets
    await consumer.disconnect()
    check(n === count, `consumed ${n} records, expected exactly ${count}`)

    for (let p = 0; p < partitions; p++) {
      check(got[p].length === expected[p].length,
        `partition ${p}: consumed ${got[p].length}, expected ${expected[p].length}`)
      for (let i = 0; i < expected[p].length; i++) {
        const e = expected[p][i]
        const g = got[p][i]
        const where = `partition ${p} #${i} (offset ${g.offset})`
        check(g.offset === String(i), `${where}: offset ${g.offset}, expected ${i}`)
        check(g.key && g.key.toString() === e.key, `${where}: key ${g.key}, expected ${e.key}`)
        check(g.value && g.value.toString() === e.value, `${where}: value ${g.value}, expected ${e.value}`)
        const hk = Object.keys(g.headers || {}).sort().join(',')
        check(hk === 'seq,src', `${where}: header keys ${hk}, expected seq,src`)
        check(g.headers.seq.toString() === e.headers.seq && g.headers.src.toString() === 'kafkajs',
          `${where}: headers seq=${g.headers.seq} src=${g.headers.src}, expected seq=${e.headers.seq} src=kafkajs`)
      }
    }

    // The group committed everything it consumed; ListOffsets agrees with the counts.
    const committed = await admin.fetchOffsets({ groupId, topics: [topic] })
    const offs = committed.find((t) => t.topic === topic)
    check(offs, `fetchOffsets: no entry for ${topic}: ${JSON.stringify(committed)}`)
    for (const po of offs.partitions) {
      check(po.offset === String(expected[po.partition].length),
        `group ${groupId} ${topic}-${po.partition}: committed ${po.offset}, expected ${expected[po.partition].length}`)
    }
    check(offs.partitions.length === partitions, `fetchOffsets: ${offs.partitions.length} partitions`)
    const topicOffsets = await admin.fetchTopicOffsets(topic)
    for (const to of topicOffsets) {
      check(to.low === '0' && to.high === String(expected[to.partition].length),
        `fetchTopicOffsets ${topic}-${to.partition}: low ${to.low} high ${to.high}, expected 0/${expected[to.partition].length}`)
    }
    console.log(`OK produce-consume produced=${acked} consumed=${n} partitions=${partitions} ` +
      `per_partition=${got.map((g) => g.length).join(',')} compression=gzip`)
  } finally {
    await admin.disconnect()
  }
}

async function adminCheck () {
  const t1 = `js-admin-a-${suffix}`
  const t2 = `js-admin-b-${suffix}`
  const admin = kafka.admin()
  await admin.connect()
  try {
    const cluster = await admin.describeCluster()
    check(cluster.brokers.length === 1, `describeCluster: ${JSON.stringify(cluster.brokers)}`)
    check(`${cluster.brokers[0].host}:${cluster.brokers[0].port}` === bootstrap,
      `describeCluster: broker ${JSON.stringify(cluster.brokers[0])}, expected ${bootstrap}`)
    check(cluster.controller === cluster.brokers[0].nodeId, `describeCluster: controller ${cluster.controller}`)

    const created = await admin.createTopics({
      topics: [
        { topic: t1, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '3600000' }] },
        { topic: t2, numPartitions: 1 }
      ],
      waitForLeaders: true
    })
    check(created === true, `createTopics returned ${created}`)
    // Creating an existing topic: kafkajs reports false (TOPIC_ALREADY_EXISTS is not an error to it).
    const again = await admin.createTopics({ topics: [{ topic: t2, numPartitions: 1 }] })
    check(again === false, `createTopics of existing ${t2} returned ${again}, expected false`)

    let names = await admin.listTopics()
    check(names.includes(t1) && names.includes(t2), `listTopics ${JSON.stringify(names)} misses ${t1}/${t2}`)
    const listed = names.length

    const md = await admin.fetchTopicMetadata({ topics: [t1, t2] })
    const parts = Object.fromEntries(md.topics.map((t) => [t.name, t.partitions.length]))
    check(parts[t1] === 2 && parts[t2] === 1, `fetchTopicMetadata partitions ${JSON.stringify(parts)}`)
    for (const t of md.topics) {
      for (const p of t.partitions) {
        check(p.leader === cluster.brokers[0].nodeId && p.partitionErrorCode === 0,
          `fetchTopicMetadata ${t.name}-${p.partitionId}: leader ${p.leader} error ${p.partitionErrorCode}`)
      }
    }

    const cfg = await admin.describeConfigs({ resources: [{ type: 2, name: t1, configNames: ['retention.ms'] }] })
    const entry = cfg.resources[0].configEntries.find((e) => e.configName === 'retention.ms')
    check(cfg.resources[0].errorCode === 0 && entry && entry.configValue === '3600000',
      `describeConfigs ${t1}: ${JSON.stringify(cfg.resources[0])}`)

    await admin.createPartitions({ topicPartitions: [{ topic: t2, count: 4 }] })
    let after = 0
    for (let i = 0; i < 50 && after !== 4; i++) {
      const m = await admin.fetchTopicMetadata({ topics: [t2] })
      after = m.topics[0].partitions.length
      if (after !== 4) await sleep(200)
    }
    check(after === 4, `createPartitions ${t2}: metadata shows ${after} partitions, expected 4`)

    await admin.deleteTopics({ topics: [t1, t2], timeout: 10000 })
    for (let i = 0; i < 50; i++) {
      names = await admin.listTopics()
      if (!names.includes(t1) && !names.includes(t2)) break
      await sleep(200)
    }
    check(!names.includes(t1) && !names.includes(t2), `deleteTopics: still listed: ${JSON.stringify(names)}`)
    console.log(`OK admin created=2 listed=${listed} partitions_after=${after} deleted=2 remaining=${names.length}`)
  } finally {
    await admin.disconnect()
  }
}

async function transactions () {
  const topic = `js-tx-${suffix}`
  const groupId = `js-txgroup-${suffix}`
  const admin = kafka.admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })
    const producer = kafka.producer({ transactionalId: `js-tx-${suffix}`, idempotent: true,
      maxInFlightRequests: 1, allowAutoTopicCreation: false })
    await producer.connect()
    const t1 = await producer.transaction()
    await t1.send({ topic, messages: [0, 1, 2, 3, 4].map((i) => ({ value: `c${i}`, partition: 0 })) })
    await t1.sendOffsets({ consumerGroupId: groupId, topics: [{ topic, partitions: [{ partition: 0, offset: '5' }] }] })
    await t1.commit()
    const t2 = await producer.transaction()
    await t2.send({ topic, messages: [0, 1, 2].map((i) => ({ value: `a${i}`, partition: 0 })) })
    await t2.abort()
    await producer.disconnect()

    const consumer = kafka.consumer({ groupId: `js-txread-${suffix}`, readUncommitted: false })
    await consumer.connect()
    await consumer.subscribe({ topic, fromBeginning: true })
    const seen = []
    await consumer.run({ eachMessage: async ({ message }) => { seen.push(message.value.toString()) } })
    const deadline = Date.now() + 30000
    while (seen.length < 5 && Date.now() < deadline) await sleep(100)
    await sleep(1500) // nothing more may come
    await consumer.disconnect()
    check(JSON.stringify(seen) === JSON.stringify(['c0', 'c1', 'c2', 'c3', 'c4']),
      `read_committed consumer saw ${JSON.stringify(seen)}`)
    const offsets = await admin.fetchOffsets({ groupId, topics: [topic] })
    const offset = offsets[0].partitions[0].offset
    check(offset === '5', `group offset ${offset}`)
    console.log(`OK transactions committed=5 consumed=${seen.length} offset=${offset}`)
  } finally {
    await admin.disconnect()
  }
}

async function main () {
  const modes = mode === 'all' ? ['produce-consume', 'admin'] : [mode]
  for (const m of modes) {
    if (m === 'produce-consume') await produceConsume()
    else if (m === 'admin') await adminCheck()
    else if (m === 'transactions') await transactions()
    else throw new CheckFailed(`unknown mode ${m}`)
  }
}

const watchdog = setTimeout(() => {
  console.error('FAIL: timed out after 150s')
  process.exit(1)
}, 150000)

main().then(() => {
  clearTimeout(watchdog)
  process.exit(0)
}, (err) => {
  console.error(`FAIL: ${err instanceof CheckFailed ? err.message : (err && err.stack) || err}`)
  process.exit(1)
})

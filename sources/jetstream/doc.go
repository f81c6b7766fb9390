// Package jetstream is the source that consumes a NATS JetStream stream
// through a durable pull consumer, turning a pipeline's demand into pull
// requests, so that a sluice pipeline scales out over several processes
// without a cluster of its own.
//
//	src := jetstream.New(js, "ORDERS", jsapi.ConsumerConfig{Durable: "billing"}, decode)
//	err := sinks.ForEach(ctx, src, func(m jetstream.Msg[Order]) error {
//		if err := bill(m.Value); err != nil {
//			return m.NakWithDelay(time.Second) // retriable: try again later
//		}
//		return m.Ack() // committed: never delivered again
//	})
//
// # Delivery guarantee
//
// At least once. Items are [Msg] envelopes that carry the message's
// acknowledgement handle; the source acknowledges nothing itself, so a
// message is acknowledged only when downstream calls [Msg.Ack] after
// committing it. Nak and NakWithDelay ask for a redelivery, Term drops a
// poison message for good (with a [DeadLetter] record to the
// [OnDeadLetter] hook), and InProgress keeps a message alive during long
// work. A message nobody settles within the consumer's AckWait is
// redelivered, to any subscription: that is how the work of a crashed
// process is taken over. Redeliveries are counted in [Stats].
//
// # Sharing the work
//
// Every subscription of a [Source], and every Source in every process
// bound to the same durable consumer, pulls from the same consumer; the
// server gives each message to one of them at a time, and its
// MaxAckPending bounds the messages in flight across all of them.
//
// # Demand
//
// Each subscription asks the server for what downstream requested and no
// more; see [Source] for the exact rule, and docs/distributed.md for the
// whole picture, including a comparison with Kafka consumer groups.
//
// Package sinks/jetstream is the publishing side.
package jetstream

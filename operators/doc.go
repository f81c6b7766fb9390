// Package operators holds the stages that sit between a source and a
// sink: transforms (Map, Filter, Take, Scan, …), batching (Batch,
// BatchWeighted), buffers with overflow policies (Buffer, LimitRate), and
// async boundaries (PublishOn, SubscribeOn) that move work onto a
// scheduler. Fan-in (Merge, Concat, Zip, FlatMap, MergePriority), fan-out
// (Broadcast, Balance, Partition, GroupBy, FairByKey) and resilience
// (Retry, timeouts, RateLimit, CircuitBreaker, AdaptiveLimit) stages
// complete the catalogue; docs/operators.md describes each one.
//
// Every operator is a function from a [flow.Publisher] to a new
// Publisher. Nothing runs until a sink subscribes; each subscription builds
// its own chain of stage instances. Each operator documents what it
// requests upstream for a downstream demand of n, when it emits, what it
// buffers, and how it ends (see also docs/operators.md).
package operators

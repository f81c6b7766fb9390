// Package monitor observes sluice pipelines: a per-pipeline Registry of
// stages and their counters, snapshots rendered as a table or as DOT and
// Mermaid graphs, a stall detector that names the stage whose subscriber
// stopped requesting, and a Prometheus collector.
//
// # How stages find the registry
//
// A pipeline is monitored by giving its sink a context from
// Registry.Context:
//
//	reg := monitor.New("etl")
//	err := sinks.ForEach(reg.Context(ctx), pipeline, fn)
//
// When a subscriber subscribes to a sluice stage, the stage asks the
// subscriber for its context (the optional interface{ Context()
// context.Context }, which every sluice sink and stage implements). If the
// context carries a registry, the stage registers one entry for that
// subscription, linked to the stage below it, and exposes the same
// context, now naming itself, to the stage above it. Registration happens
// once per subscription; without a registry a stage keeps no counters and
// pays a nil check per signal.
//
// # Counters
//
// Each entry counts what downstream requested, what was delivered, what
// is buffered, what was dropped by reason, errors, and the state of the
// subscription. The delivered count is kept by the delivering goroutine
// and published when demand runs out, when the stream ends, and on the
// next item after each detector check; the other counters are atomic.
//
// # Stall detection
//
// See docs/observability.md for the definitions of stalled, idle and
// never requested, and for how a report is read.
package monitor

// Package bench holds sluice's benchmarks and the baselines they are
// compared with, measured side by side in the same run: a plain loop (the
// physical floor), channel pipelines and rxgo v2.5.0.
//
// The CLI, go run ./bench/cmd/sluicebench, runs the same scenarios
// (Scenarios) in rounds and prints medians, ranges and ratios to each
// baseline as a markdown table and an SVG chart. Measure, Markdown and SVG
// time your own pipelines with the same harness (see Example_ownPipeline).
//
// Run them with
//
//	go test -run '^$' -bench . -count 5 ./bench/ | tee new.txt
//
// and quote medians (benchstat new.txt). Each benchmark reports ns/item
// through b.ReportMetric, so figures for different item counts compare
// directly. docs/benchmarks.md records the latest figures.
package bench

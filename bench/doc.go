// Package bench holds sluice's benchmarks and the baselines they are
// compared with, measured side by side in the same run: a plain loop (the
// physical floor) and, as the comparison suite grows, channel pipelines and
// other libraries.
//
// Run them with
//
//	go test -run '^$' -bench . -count 5 ./bench/ | tee new.txt
//
// and quote medians (benchstat new.txt). Each benchmark reports ns/item
// through b.ReportMetric, so figures for different item counts compare
// directly. docs/benchmarks.md records the latest figures.
package bench

package sources_test

import (
	"iter"
	"slices"
	"testing"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sources"
)

// counting is the minimal subscriber a sink would be: it requests 256 up
// front and 192 more each time it has consumed 192 (Reactor's 75 % rule),
// and counts what it receives. Its per-item work is one increment and one
// comparison, so the benchmarks measure the source.
type counting struct {
	sub  flow.Subscription
	n    int // items received
	next int // n at which to request 192 more
	done bool
}

func (c *counting) OnSubscribe(s flow.Subscription) {
	c.sub, c.next = s, 192
	s.Request(256)
}

func (c *counting) OnNext(int) {
	if c.n++; c.n == c.next {
		c.next += 192
		c.sub.Request(192)
	}
}

func (c *counting) OnError(error) { c.done = true }
func (c *counting) OnComplete()   { c.done = true }

// unboundedCounting requests everything at once.
type unboundedCounting struct{ counting }

func (c *unboundedCounting) OnSubscribe(s flow.Subscription) {
	c.sub, c.next = s, -1
	s.Request(flow.Unbounded)
}

var benchSink int

const benchN = 1_000_000

func reportPerItem(b *testing.B, n int) {
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/item")
}

func benchSource(b *testing.B, pub flow.Publisher[int], n int, unbounded bool) {
	b.ReportAllocs()
	for b.Loop() {
		var c *counting
		if unbounded {
			u := &unboundedCounting{}
			pub.Subscribe(u)
			c = &u.counting
		} else {
			c = &counting{}
			pub.Subscribe(c)
		}
		if c.n != n || !c.done {
			b.Fatalf("got %d items, done=%t; want %d", c.n, c.done, n)
		}
	}
	reportPerItem(b, n)
}

// BenchmarkPlainLoop is the baseline. "n=1e6" counts the same items in a
// plain for loop, with no protocol and no call; "n=1e6/interface" calls
// the counting subscriber's OnNext through the flow.Subscriber interface,
// as every source must: the floor under BenchmarkRange.
func BenchmarkPlainLoop(b *testing.B) {
	b.Run("n=1e6", func(b *testing.B) {
		for b.Loop() {
			benchSink += plainCount(benchN)
		}
		reportPerItem(b, benchN)
	})
	b.Run("n=1e6/interface", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			c := &counting{next: -1}
			plainEmit(c, benchN)
			if c.n != benchN {
				b.Fatalf("got %d items, want %d", c.n, benchN)
			}
		}
		reportPerItem(b, benchN)
	})
}

//go:noinline
func plainCount(n int) int {
	count := 0
	for range n {
		count++
	}
	return count
}

//go:noinline
func plainEmit(s flow.Subscriber[int], n int) {
	for i := range n {
		s.OnNext(i)
	}
}

func BenchmarkRange(b *testing.B) {
	b.Run("n=1e6", func(b *testing.B) { benchSource(b, sources.Range(0, benchN), benchN, false) })
	b.Run("n=1e6/unbounded", func(b *testing.B) { benchSource(b, sources.Range(0, benchN), benchN, true) })
}

func BenchmarkSlice(b *testing.B) {
	items := ints(0, benchN)
	b.Run("n=1e6", func(b *testing.B) { benchSource(b, sources.Slice(items), benchN, false) })
}

func BenchmarkGenerate(b *testing.B) {
	b.Run("n=1e6", func(b *testing.B) { benchSource(b, countTo(benchN), benchN, false) })
}

func BenchmarkFromSeq(b *testing.B) {
	const n = 100_000
	seq := iter.Seq[int](slices.Values(ints(0, n)))
	b.Run("n=1e5/pull", func(b *testing.B) { benchSource(b, sources.FromSeq(seq), n, false) })
	b.Run("n=1e5/unbounded", func(b *testing.B) { benchSource(b, sources.FromSeq(seq), n, true) })
}

func BenchmarkFromChannel(b *testing.B) {
	const n = 100_000
	b.Run("n=1e5/buffered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			b.StopTimer()
			ch := filled(n)
			b.StartTimer()
			c := &counting{}
			sources.FromChannel(ch).Subscribe(c)
			if c.n != n {
				b.Fatalf("got %d items", c.n)
			}
		}
		reportPerItem(b, n)
	})
}

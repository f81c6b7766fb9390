package bench

import (
	"runtime"
	"sync/atomic"
)

// The floor of the async chain: what three goroutines joined by the
// leanest bounded queues cost on this machine, with none of what a
// library owes its users (no demand protocol, cancellation, errors,
// panics or monitoring). Each hop is a single-producer single-consumer
// ring of 256 ints whose producer publishes its tail every 64 items and
// whose consumer publishes its head every 64; a side that finds the ring
// full or empty yields (runtime.Gosched) and looks again. The first
// goroutine runs the source and the map, the second the filter, and the
// caller the reduction, as in the sluice chain.

const (
	hwCap   = 256
	hwBatch = 64
	hwDone  = uint64(1) << 62 // set in the tail when the producer has finished
)

type hwRing struct {
	_    [64]byte
	head atomic.Uint64
	_    [56]byte
	tail atomic.Uint64
	_    [56]byte
	buf  [hwCap]int
}

// hwProducer is the producing side of a ring, owned by one goroutine.
type hwProducer struct {
	q    *hwRing
	t, h uint64 // own tail, last head read
}

func (p *hwProducer) put(v int) {
	for p.t-p.h >= hwCap {
		p.q.tail.Store(p.t)
		runtime.Gosched()
		p.h = p.q.head.Load()
	}
	p.q.buf[p.t%hwCap] = v
	if p.t++; p.t%hwBatch == 0 {
		p.q.tail.Store(p.t)
	}
}

func (p *hwProducer) close() { p.q.tail.Store(p.t | hwDone) }

// hwConsumer is the consuming side of a ring, owned by one goroutine.
type hwConsumer struct {
	q    *hwRing
	h, t uint64 // own head, last tail read
	done bool
}

func (c *hwConsumer) take() (int, bool) {
	for c.h == c.t {
		if c.done {
			return 0, false
		}
		c.q.head.Store(c.h)
		t := c.q.tail.Load()
		if t&hwDone != 0 {
			c.done, t = true, t&^hwDone
		}
		if t == c.h && !c.done {
			runtime.Gosched()
		}
		c.t = t
	}
	v := c.q.buf[c.h%hwCap]
	if c.h++; c.h%hwBatch == 0 {
		c.q.head.Store(c.h)
	}
	return v, true
}

// handwrittenChain runs Range(n) → map → filter → reduce over two rings.
func handwrittenChain(n int) int {
	mapped, kept := new(hwRing), new(hwRing)
	go func() {
		p := hwProducer{q: mapped}
		for i := range n {
			p.put(doubleFn(i))
		}
		p.close()
	}()
	go func() {
		c, p := hwConsumer{q: mapped}, hwProducer{q: kept}
		for {
			v, ok := c.take()
			if !ok {
				break
			}
			if keepFn(v) {
				p.put(v)
			}
		}
		p.close()
	}()
	c, acc := hwConsumer{q: kept}, 0
	for {
		v, ok := c.take()
		if !ok {
			return acc
		}
		acc = sumFn(acc, v)
	}
}

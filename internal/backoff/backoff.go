// Package backoff computes the delays between retries that sluice's
// retrying stages and sinks share: exponential growth with a cap, and
// optional jitter.
package backoff

import (
	"math"
	"time"
)

// Jitter says how a delay is randomised.
type Jitter uint8

// The jitters, in the order operators.Jitter names them.
const (
	Full  Jitter = iota // uniform in [0, d)
	Equal               // d/2 plus uniform in [0, d/2)
	None                // exactly d
)

// Delay returns the wait before retry k (k = 1 for the first retry):
// d = min(max, initial × multiplier^(k−1)), randomised by jitter with u, a
// number in [0, 1] (values outside it are clamped).
func Delay(k int, initial, max time.Duration, multiplier float64, jitter Jitter, u float64) time.Duration {
	d := float64(initial) * math.Pow(multiplier, float64(k-1))
	if d > float64(max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(max)
	}
	if !(u >= 0) { // NaN too
		u = 0
	}
	u = min(u, 1)
	switch jitter {
	case Full:
		d *= u
	case Equal:
		d = d/2 + d/2*u
	}
	return time.Duration(d)
}

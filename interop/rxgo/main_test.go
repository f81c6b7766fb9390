package rxgo_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine rxgo starts for the adapters ends when the adapter
// cancels the context it passes to Observe, so no goroutine is ignored.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

package flow

import (
	"errors"
	"fmt"
	"runtime/debug"
)

// ErrNonPositiveRequest is the error, or the cause of the error, that a
// publisher signals through OnError when its subscriber calls
// Request(n) with n <= 0 (rule 3.9).
var ErrNonPositiveRequest = errors.New("sluice: non-positive subscription request (rule 3.9)")

// NonPositiveRequestError returns the error to signal for Request(n) with
// n <= 0. It matches [ErrNonPositiveRequest] with [errors.Is] and names n.
func NonPositiveRequestError(n int64) error {
	return fmt.Errorf("%w: Request(%d)", ErrNonPositiveRequest, n)
}

// PanicError is a panic recovered from user code (a map function, a
// generator, a callback) and turned into an error, so that a bad item ends
// one stream instead of crashing the program. It travels downstream through
// OnError like any other failure.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the stack of the goroutine that panicked, as printed by
	// runtime/debug.Stack at the point of recovery.
	Stack []byte
}

var _ error = (*PanicError)(nil)

// NewPanicError wraps a value returned by recover. It must be called from
// the deferred function that recovered, so that the stack is the
// panicking goroutine's. If v is already a *PanicError it is returned
// unchanged.
func NewPanicError(v any) *PanicError {
	if pe, ok := v.(*PanicError); ok {
		return pe
	}
	return &PanicError{Value: v, Stack: debug.Stack()}
}

// Error reports the panic value. The stack is kept in the Stack field.
func (e *PanicError) Error() string {
	return fmt.Sprintf("sluice: panic: %v", e.Value)
}

// Unwrap returns the panic value when it is an error, and nil otherwise,
// so that errors.Is and errors.As see through a panic(err).
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// Catch calls f and returns the panic it raised, if any, as a
// *PanicError; it returns nil when f returns normally. runtime.Goexit is
// not intercepted.
//
// Catch costs one deferred call; stages that call user functions per item
// on a hot path recover in their own OnNext instead.
func Catch(f func()) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = NewPanicError(v)
		}
	}()
	f()
	return nil
}

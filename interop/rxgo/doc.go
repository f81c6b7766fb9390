// Package rxgo connects sluice to RxGo v2 (github.com/reactivex/rxgo/v2)
// in both directions:
//
//   - [FromObservable] turns an rxgo Observable into a sluice
//     flow.Publisher. RxGo has no demand: its operators push into Go
//     channels as fast as they can. The adapter reads the Observable's
//     channel into a bounded buffer (a sources.Emitter) governed by a
//     flow.Overflow policy, so nothing is lost silently: every item that
//     does not reach the subscriber is counted and passed to the [OnDrop]
//     hook.
//   - [ToObservable] turns a sluice Publisher into an rxgo Observable. It
//     requests in batches (a prefetch of 256 by default, replenished by
//     three quarters as they are consumed) and blocks the Publisher while
//     the Observable's channel is full, so the Observable's consumer
//     paces the Publisher.
//
// The package is named after the library it adapts; import it under
// another name next to RxGo itself:
//
//	import (
//		rx "github.com/reactivex/rxgo/v2"
//		rxinterop "github.com/sluicego/sluice/interop/rxgo"
//	)
//
// # Goroutines
//
// RxGo runs every operator on a goroutine of its own. The adapters stop
// theirs by cancelling the context they pass to Observe (with
// rx.WithContext): the Observables that rxgo builds lazily (Just, Range,
// Defer and the operators on them) end their goroutines with it. An
// Observable fed by a channel the caller owns (FromChannel,
// FromEventSource, Create) ends when the caller closes that channel, not
// before.
package rxgo

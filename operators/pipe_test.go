package operators_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/operators"
	"github.com/sluicego/sluice/sources"
)

func trCollect[T any](t *testing.T, pub flow.Publisher[T]) []string {
	t.Helper()
	p := newTrProbe[T](t, nil)
	p.onSubscribe = trRequestFirst[T](1)
	p.onNext = trRequestEach[T](1)
	pub.Subscribe(p)
	return p.log.get()
}

func TestPipe(t *testing.T) {
	var ops operators.Stages[int]
	even := func(v int) bool { return v%2 == 0 }
	square := func(v int) int { return v * v }
	double := func(p flow.Publisher[int]) flow.Publisher[int] {
		return operators.Map(p, func(v int) int { return 2 * v })
	}
	tests := []struct {
		name string
		pub  flow.Publisher[int]
		want []string
	}{
		{"no stages", operators.Pipe(sources.Range(1, 3)), trLogOf(trInts(1, 3), "OnComplete")},
		{"in the order items flow", operators.Pipe(sources.Range(1, 20), ops.Filter(even), ops.Map(square), ops.Take(3)),
			trLogOf([]int{4, 16, 36}, "OnComplete")},
		{"plain functions are stages", operators.Pipe(sources.Range(1, 3), double, double),
			trLogOf([]int{4, 8, 12}, "OnComplete")},
		{"Then composes a reusable stage", operators.Pipe(sources.Range(1, 10),
			ops.Skip(2).Then(ops.TakeWhile(func(v int) bool { return v < 7 })).Then(ops.Scan(0, func(a, v int) int { return a + v }))),
			trLogOf([]int{3, 7, 12, 18}, "OnComplete")},
		{"Tap, MapErr and FilterErr", operators.Pipe(sources.Range(1, 4),
			ops.Tap(func(int) {}),
			ops.MapErr(func(v int) (int, error) { return v + 1, nil }),
			ops.FilterErr(func(v int) (bool, error) { return v != 3, nil })),
			trLogOf([]int{2, 4, 5}, "OnComplete")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, trCollect(t, tt.pub)); diff != "" {
				t.Errorf("log (-want +got)\n%s", diff)
			}
		})
	}
}

func TestStageAppliedTwiceBuildsTwoOperators(t *testing.T) {
	var ops operators.Stages[int]
	sum := ops.Scan(0, func(a, v int) int { return a + v })
	a := operators.Pipe(sources.Range(1, 3), sum)
	b := operators.Pipe(sources.Range(10, 2), sum)
	if diff := cmp.Diff(trLogOf([]int{1, 3, 6}, "OnComplete"), trCollect(t, a)); diff != "" {
		t.Errorf("first (-want +got)\n%s", diff)
	}
	if diff := cmp.Diff(trLogOf([]int{10, 21}, "OnComplete"), trCollect(t, b)); diff != "" {
		t.Errorf("second (-want +got)\n%s", diff)
	}
}

package svgtext_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/sluicego/sluice/bench/internal/svgtext"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTexts(t *testing.T) {
	doc := `<svg><title>T &amp; co</title><text class="x-label"> ns </text>
<g class="legend"><rect/><text>a</text><text class="ignored">b</text></g></svg>`
	got, err := svgtext.Texts(strings.NewReader(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"title": {"T & co"}, "x-label": {"ns"}, "legend": {"a", "b"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got)\n%s", diff)
	}
	if _, err := svgtext.Texts(strings.NewReader("<svg><g></svg>")); err == nil {
		t.Error("a malformed document gave no error")
	}
}

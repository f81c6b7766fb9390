package main

import (
	"io"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestOutput keeps the README's printed output true.
func TestOutput(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout := os.Stdout
	os.Stdout = w
	main()
	os.Stdout = stdout
	w.Close()
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	want := "[1 9 25 49]\n[81 121 169 225]\n[289 361]\n[7 8 9] <nil> [0 1 2 3 4 5 6]\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("output (-want +got)\n%s", diff)
	}
}

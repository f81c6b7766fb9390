package sources_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/sinks"
	"github.com/sluicego/sluice/sources"
)

// The source reads only what is requested: two lines for Request(2).
func ExampleLines() {
	var sub flow.Subscription
	sources.Lines(strings.NewReader("alpha\r\nbeta\ngamma")).Subscribe(flow.SubscriberFuncs[string]{
		Subscribe: func(s flow.Subscription) { sub = s },
		Next:      func(line string) { fmt.Println(strconv.Quote(line)) },
		Error:     func(err error) { fmt.Println("error:", err) },
		Complete:  func() { fmt.Println("done") },
	})
	fmt.Println("request 2")
	sub.Request(2)
	fmt.Println("request 2")
	sub.Request(2)
	// Output:
	// request 2
	// "alpha"
	// "beta"
	// request 2
	// "gamma"
	// done
}

func ExampleLines_tooLong() {
	printAll(sources.Lines(strings.NewReader("short\nmuch too long\n"), sources.MaxLineLength(8)))
	// Output:
	// short
	// error: sluice: line 2: sluice: line too long
}

// A file source in a pipeline: the sink's demand paces the reads, and the
// file is closed when the stream ends.
func ExampleLinesFile() {
	path := filepath.Join(os.TempDir(), "sluice-example-lines.txt")
	if err := os.WriteFile(path, []byte("first\nsecond\nthird\n"), 0o600); err != nil {
		panic(err)
	}
	defer os.Remove(path)
	err := sinks.ForEach(context.Background(), sources.LinesFile(path), func(line string) error {
		fmt.Println(strings.ToUpper(line))
		return nil
	})
	fmt.Println("err:", err)
	// Output:
	// FIRST
	// SECOND
	// THIRD
	// err: <nil>
}

package monitor

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sluicego/sluice/flow"
	"github.com/sluicego/sluice/internal/probe"
)

// State is the life-cycle state of a stage's subscription.
type State = probe.State

// The states a stage moves through.
const (
	StateSubscribed = probe.Subscribed // OnSubscribe delivered, no Request yet
	StateActive     = probe.Active     // requested at least once
	StateCompleted  = probe.Completed
	StateFailed     = probe.Failed
	StateCancelled  = probe.Cancelled
)

// StageInfo is the state of one stage's subscription at a snapshot.
// Requested, Delivered, Outstanding and Buffered count items; Outstanding
// is flow.Unbounded when downstream asked for everything.
type StageInfo struct {
	ID          int    // registration order in the pipeline, from 1
	Position    int    // distance from the sources, from 1
	Name        string // given with Name, or derived such as "map#2"
	Kind        string // "map", "buffer", "range", …
	State       State
	Requested   int64 // requested by downstream, cumulative
	Delivered   int64
	Outstanding int64 // requested and not yet delivered
	Buffered    int64
	Dropped     map[flow.DropReason]int64 // only reasons with drops; nil if none
	Errors      int64
	Stalls      int64 // stall reports against this stage
	LastRequest time.Time
	LastNext    time.Time // when the detector last saw deliveries; zero if never
	Downstream  int       // ID of the stage it delivers to; 0 if unregistered
}

// DroppedTotal returns the sum of Dropped.
func (s StageInfo) DroppedTotal() int64 {
	var n int64
	for _, v := range s.Dropped {
		n += v
	}
	return n
}

// Link is an edge of the topology: From delivers to To. Demand is what To
// has requested from From and not yet received; Buffered is what From
// holds.
type Link struct {
	From, To int
	Demand   int64
	Buffered int64
}

// Snapshot is a copy of a pipeline's stages, links and counters.
type Snapshot struct {
	Pipeline string
	Time     time.Time
	Stages   []StageInfo // by ID
	Links    []Link
	Gauges   []GaugeValue // see Registry.Gauge
}

// Snapshot returns the current counters of every registered stage. It is
// goroutine-safe and takes no lock that the item path takes; the counters
// are read one by one, so their sum may be off by items in flight.
func (r *Registry) Snapshot() Snapshot {
	stages := r.reg.Stages()
	reads := make(map[*probe.Stage]probe.Counters, len(stages))
	for _, s := range stages {
		reads[s] = s.Read()
	}
	r.wmu.Lock()
	snap := r.snapshot(time.Now(), stages, reads, r.watches)
	r.wmu.Unlock()
	snap.Gauges = r.gaugeValues()
	return snap
}

func (r *Registry) snapshot(now time.Time, stages []*probe.Stage, reads map[*probe.Stage]probe.Counters, watches map[*probe.Stage]*watch) Snapshot {
	snap := Snapshot{Pipeline: r.pipeline, Time: now, Stages: make([]StageInfo, 0, len(stages))}
	for _, s := range stages {
		c := reads[s]
		info := StageInfo{
			ID: s.ID, Name: s.Name, Kind: s.Kind, State: c.State,
			Requested: c.Requested, Delivered: c.Delivered, Outstanding: c.Outstanding,
			Buffered: c.Buffered, Errors: c.Errors, Stalls: c.Stalls, LastRequest: c.LastRequest,
		}
		for reason, n := range c.Dropped {
			if n != 0 {
				if info.Dropped == nil {
					info.Dropped = map[flow.DropReason]int64{}
				}
				info.Dropped[flow.DropReason(reason)] = n
			}
		}
		if w := watches[s]; w != nil {
			info.LastNext = w.lastNext
		}
		if s.Downstream != nil {
			info.Downstream = s.Downstream.ID
			snap.Links = append(snap.Links, Link{From: s.ID, To: s.Downstream.ID, Demand: c.Outstanding, Buffered: c.Buffered})
		}
		if s.Upstream != nil {
			snap.Links = append(snap.Links, Link{From: s.Upstream.ID, To: s.ID, Buffered: reads[s.Upstream].Buffered})
		}
		snap.Stages = append(snap.Stages, info)
	}
	positions(&snap)
	return snap
}

// positions sets each stage's Position: 1 for stages nothing delivers to,
// else one more than the furthest stage that delivers to it.
func positions(s *Snapshot) {
	in := map[int][]int{}
	for _, l := range s.Links {
		in[l.To] = append(in[l.To], l.From)
	}
	pos := map[int]int{}
	var visit func(id int, depth int) int
	visit = func(id, depth int) int {
		if p, ok := pos[id]; ok {
			return p
		}
		p := 1
		if depth < len(s.Stages) { // guards against a cycle
			for _, from := range in[id] {
				p = max(p, visit(from, depth+1)+1)
			}
		}
		pos[id] = p
		return p
	}
	for i := range s.Stages {
		s.Stages[i].Position = visit(s.Stages[i].ID, 0)
	}
}

// stage returns the StageInfo with the given ID.
func (s *Snapshot) stage(id int) StageInfo {
	for _, st := range s.Stages {
		if st.ID == id {
			return st
		}
	}
	return StageInfo{ID: id}
}

// ordered returns the stages sorted by position, then ID.
func (s Snapshot) ordered() []StageInfo {
	out := append([]StageInfo(nil), s.Stages...)
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Position != out[j].Position {
			return out[i].Position < out[j].Position
		}
		return out[i].ID < out[j].ID
	})
	return out
}

func count(n int64) string {
	if n == flow.Unbounded {
		return "unbounded"
	}
	return strconv.FormatInt(n, 10)
}

func drops(s StageInfo) string {
	if len(s.Dropped) == 0 {
		return "0"
	}
	reasons := make([]flow.DropReason, 0, len(s.Dropped))
	for r := range s.Dropped {
		reasons = append(reasons, r)
	}
	sort.Slice(reasons, func(i, j int) bool { return reasons[i] < reasons[j] })
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = r.String() + "=" + strconv.FormatInt(s.Dropped[r], 10)
	}
	return strings.Join(parts, ",")
}

// WriteTable writes the snapshot as an aligned text table, one row per
// stage from the sources down.
func (s Snapshot) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "POS\tSTAGE\tKIND\tSTATE\tREQUESTED\tDELIVERED\tDEMAND\tBUFFERED\tDROPPED\tERRORS\tSTALLS\n")
	for _, st := range s.ordered() {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%d\t%d\n",
			st.Position, st.Name, st.Kind, st.State, count(st.Requested), st.Delivered,
			count(st.Outstanding), st.Buffered, drops(st), st.Errors, st.Stalls)
	}
	return tw.Flush()
}

// Table returns WriteTable's output as a string.
func (s Snapshot) Table() string {
	var b strings.Builder
	_ = s.WriteTable(&b)
	return b.String()
}

// DOT renders the topology in Graphviz DOT: one node per stage with its
// state and delivered count, one edge per link labelled with the demand
// and buffered counts.
func (s Snapshot) DOT() string {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %q {\n\trankdir=LR;\n\tnode [shape=box];\n", s.Pipeline)
	for _, st := range s.ordered() {
		fmt.Fprintf(&b, "\ts%d [label=%q];\n", st.ID, fmt.Sprintf("%s\n%s, delivered %d", st.Name, st.State, st.Delivered))
	}
	for _, l := range s.Links {
		fmt.Fprintf(&b, "\ts%d -> s%d [label=%q];\n", l.From, l.To, fmt.Sprintf("demand %s, buffered %d", count(l.Demand), l.Buffered))
	}
	b.WriteString("}\n")
	return b.String()
}

// Mermaid renders the topology as a Mermaid flowchart, with the same
// labels as DOT.
func (s Snapshot) Mermaid() string {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
	for _, st := range s.ordered() {
		fmt.Fprintf(&b, "    s%d[\"%s<br/>%s, delivered %d\"]\n", st.ID, mermaidText(st.Name), st.State, st.Delivered)
	}
	for _, l := range s.Links {
		fmt.Fprintf(&b, "    s%d -->|\"demand %s, buffered %d\"| s%d\n", l.From, count(l.Demand), l.Buffered, l.To)
	}
	return b.String()
}

// mermaidText escapes the characters that end a Mermaid label.
func mermaidText(s string) string {
	return strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;").Replace(s)
}

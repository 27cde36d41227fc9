package report

import (
	"fmt"
	"image/color"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

const (
	plotHeight   = 10 * vg.Centimeter
	minPlotWidth = 16 * vg.Centimeter
	barWidth     = 0.45 * vg.Centimeter
)

// Plots draws, as SVG files in dir, what there is data for: throughput
// at saturation and CPU per million answers at the fixed rate (bars, one
// group per scenario), load time, RSS and memory per record from the
// setups (bars, one group per zone size), and a latency CDF per scenario
// with latency. It returns the files' paths.
func Plots(dir string, sums []Summary, setups []ServerSetup) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("plot dir: %w", err)
	}
	var files []string
	add := func(name string, fig *figure, err error) error {
		if err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		if fig == nil {
			return nil
		}
		file := filepath.Join(dir, name)
		if err := fig.save(file); err != nil {
			return fmt.Errorf("plot %s: %w", name, err)
		}
		files = append(files, file)
		return nil
	}

	fig, err := barFigure(sums, saturationOf, func(s *Summary) float64 { return s.QPS },
		"Answered queries at saturation", "answered q/s (median over rounds)", qpsTicks{})
	if err := add("throughput.svg", fig, err); err != nil {
		return files, err
	}

	title := "Server CPU per million answers at the fixed rate"
	if r := fixedRates(sums); len(r) == 1 {
		title += " (" + rate(r[0]) + ")"
	}
	fig, err = barFigure(sums, fixedOf, func(s *Summary) float64 { return s.CPUPerMillion },
		title, "CPU-seconds per million answers (lower is better)", plot.DefaultTicks{})
	if err := add("cpu-per-million.svg", fig, err); err != nil {
		return files, err
	}

	load, rss, perRecord, err := setupFigures(setups)
	if err != nil {
		return files, fmt.Errorf("plot setups: %w", err)
	}
	for _, f := range []struct {
		name string
		fig  *figure
	}{{"load-time.svg", load}, {"rss.svg", rss}, {"memory-per-record.svg", perRecord}} {
		if err := add(f.name, f.fig, nil); err != nil {
			return files, err
		}
	}

	for _, sc := range scenarios(sums) {
		fig, err := latencyFigure(sums, sc)
		if err := add("latency-"+fileSafe(sc)+".svg", fig, err); err != nil {
			return files, err
		}
	}
	return files, nil
}

// figure is a plot with its legend kept outside it: inside, the legend
// would cover bars.
type figure struct {
	p      *plot.Plot
	width  vg.Length
	names  []string
	thumbs []plot.Thumbnailer
}

func (f *figure) save(file string) error {
	leg := plot.NewLegend()
	leg.Top, leg.Left = true, true
	var textW vg.Length
	for i, n := range f.names {
		leg.Add(n, f.thumbs[i])
		textW = max(textW, leg.TextStyle.Width(n))
	}
	legW := leg.ThumbnailWidth + textW + vg.Centimeter

	c := vgsvg.New(f.width+legW, plotHeight)
	dc := draw.New(c)
	f.p.Draw(draw.Crop(dc, 0, -legW, 0, 0))
	// Below the title, beside the plotting area.
	leg.Draw(draw.Crop(dc, f.width+0.3*vg.Centimeter, 0, 0, -vg.Centimeter))

	out, err := os.Create(file)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(out); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// barFigure groups bars by scenario, one bar per server, with the
// summary pick chooses for each; nil when no value is above zero.
func barFigure(sums []Summary, pick func([]Summary, string, string) *Summary, value func(*Summary) float64,
	title, ylabel string, ticks plot.Ticker) (*figure, error) {
	var bars Bars
	for _, sc := range scenarios(sums) {
		for _, srv := range servers(sums, sc) {
			if s := pick(sums, sc, srv); s != nil {
				bars.Add(sc, srv, value(s))
			}
		}
	}
	return bars.figure(title, "scenario", ylabel, ticks)
}

// Bars is the data of a grouped bar chart: values by group (the x axis)
// and series (one colour each, a server), in the order first added.
// Other benchmarks (bench/cmd/manyzones) draw theirs with it too.
type Bars struct {
	groups, series []string
	vals           []map[string]float64 // per group
}

// Add sets the bar of series in group; values at or below zero are left
// out (nothing was measured).
func (b *Bars) Add(group, series string, v float64) {
	if !(v > 0) {
		return
	}
	g := slices.Index(b.groups, group)
	if g < 0 {
		g = len(b.groups)
		b.groups = append(b.groups, group)
		b.vals = append(b.vals, map[string]float64{})
	}
	b.vals[g][series] = v
	if !slices.Contains(b.series, series) {
		b.series = append(b.series, series)
	}
}

// figure draws the bars, servers in the reports' order; nil when there
// is nothing to draw.
func (b *Bars) figure(title, xlabel, ylabel string, ticks plot.Ticker) (*figure, error) {
	if len(b.groups) == 0 {
		return nil, nil
	}
	srvs := slices.Clone(b.series)
	slices.SortStableFunc(srvs, compareServers)

	p := plot.New()
	p.Title.Text = title
	p.X.Label.Text = xlabel
	p.Y.Label.Text = ylabel
	p.Y.Min = 0
	if ticks != nil {
		p.Y.Tick.Marker = ticks
	}
	grid := plotter.NewGrid()
	grid.Vertical.Width = 0
	p.Add(grid)

	fig := &figure{p: p}
	n := len(srvs)
	for i, srv := range srvs {
		// A server missing from a group gets an empty slot there.
		v := make(plotter.Values, len(b.groups))
		for g, row := range b.vals {
			v[g] = row[srv]
		}
		bc, err := plotter.NewBarChart(v, barWidth)
		if err != nil {
			return nil, err
		}
		bc.Color = serverColor(srv)
		bc.LineStyle.Width = 0
		bc.Offset = barWidth * vg.Length(2*i-n+1) / 2
		p.Add(bc)
		fig.names = append(fig.names, srv)
		fig.thumbs = append(fig.thumbs, bc)
	}
	p.NominalX(b.groups...)
	p.Y.Max *= 1.08 // the tallest bar would otherwise touch the frame
	fig.width = max(minPlotWidth, vg.Length(len(b.groups))*vg.Length(n+2)*barWidth+3*vg.Centimeter)
	return fig, nil
}

// Save draws the bars as an SVG file; false when there was nothing to
// draw (and no file).
func (b *Bars) Save(file, title, xlabel, ylabel string) (bool, error) {
	fig, err := b.figure(title, xlabel, ylabel, nil)
	if err != nil || fig == nil {
		return false, err
	}
	return true, fig.save(file)
}

// setupFigures draws what loading cost, from the setups: load time, RSS
// and memory per record, one group per zone size (scenarios that share a
// zone would only repeat the bars), the first setup of each server for
// that size. xdpns with XDP gets a second bar per group for its BPF maps
// ("<server> maps"), which RSS does not count.
func setupFigures(setups []ServerSetup) (load, rss, perRecord *figure, err error) {
	var lb, rb, pb Bars
	seen := map[[2]string]bool{}
	for _, s := range setups {
		if s.Error != "" || s.Records == 0 {
			continue
		}
		group := zoneSize(s.Names, s.Records)
		if seen[[2]string{group, s.Server}] {
			continue
		}
		seen[[2]string{group, s.Server}] = true
		lb.Add(group, s.Server, s.LoadSecs)
		rb.Add(group, s.Server, float64(s.RSSBytes)/(1<<20))
		pb.Add(group, s.Server, float64(s.RSSBytes)/float64(s.Records))
		if s.MapBytes > 0 {
			rb.Add(group, s.Server+" maps", float64(s.MapBytes)/(1<<20))
			pb.Add(group, s.Server+" maps", float64(s.MapBytes)/float64(s.Records))
		}
	}
	if load, err = lb.figure("Start until the zone answers", "zone", "seconds (lower is better)", nil); err != nil {
		return
	}
	if rss, err = rb.figure("Resident memory once loaded (and BPF maps)", "zone", "MiB (lower is better)", nil); err != nil {
		return
	}
	perRecord, err = pb.figure("Memory per record once loaded (and BPF maps)", "zone", "bytes per record (lower is better)", nil)
	return
}

// zoneSize names a zone by its size, as the x axis of the setup plots.
func zoneSize(names, records int) string {
	return fmt.Sprintf("%s names, %s records", count(names), count(records))
}

// count writes 1000000 as 1M and 20003 as 20k.
func count(n int) string {
	switch {
	case n >= 1_000_000:
		return strconv.FormatFloat(float64(n)/1e6, 'g', 3, 64) + "M"
	case n >= 1000:
		return strconv.Itoa(n/1000) + "k"
	}
	return strconv.Itoa(n)
}

// latencyFigure draws one CDF line per server of a scenario; nil when no
// server has latency data.
func latencyFigure(sums []Summary, sc string) (*figure, error) {
	type line struct {
		srv, load string
		xys       plotter.XYs
	}
	var lines []line
	lo, hi := math.Inf(1), 0.0
	for _, srv := range servers(sums, sc) {
		s := latencyOf(sums, sc, srv)
		if s == nil {
			continue
		}
		xys := cdfPoints(s.Latency)
		if len(xys) == 0 {
			continue
		}
		lo, hi = min(lo, xys[0].X), max(hi, xys[len(xys)-1].X)
		lines = append(lines, line{srv, phaseName(s.Phase) + ", " + rate(s.Offered), xys})
	}
	if len(lines) == 0 {
		return nil, nil
	}

	p := plot.New()
	p.Title.Text = "Response time, scenario " + sc
	sameLoad := !slices.ContainsFunc(lines, func(l line) bool { return l.load != lines[0].load })
	if sameLoad {
		p.Title.Text += " (" + lines[0].load + ")"
	}
	p.X.Label.Text = "response time (log scale)"
	p.Y.Label.Text = "share of answers within"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = microTicks{}
	// Whole decades, so that the log ticks always have a labelled one.
	p.X.Min = math.Pow(10, math.Floor(math.Log10(lo)))
	p.X.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
	if p.X.Max <= p.X.Min {
		p.X.Max = p.X.Min * 10
	}
	p.Y.Min, p.Y.Max = 0, 1
	p.Add(plotter.NewGrid())

	fig := &figure{p: p, width: minPlotWidth}
	for _, l := range lines {
		pl, err := plotter.NewLine(l.xys)
		if err != nil {
			return nil, err
		}
		pl.Color = serverColor(l.srv)
		pl.Width = vg.Points(1.5)
		p.Add(pl)
		name := l.srv
		if !sameLoad {
			name += " (" + l.load + ")"
		}
		fig.names = append(fig.names, name)
		fig.thumbs = append(fig.thumbs, pl)
	}
	return fig, nil
}

// cdfPoints is the latency's CDF, or, when the generator gave only
// percentiles, a coarse one drawn from them. Points at or below zero
// have no place on a log axis.
func cdfPoints(l *Latency) plotter.XYs {
	var xys plotter.XYs
	if l == nil {
		return nil
	}
	if len(l.CDF) > 0 {
		for _, c := range l.CDF {
			xys = append(xys, plotter.XY{X: c.Micros, Y: c.Fraction})
		}
	} else {
		for _, c := range []plotter.XY{{X: l.P50, Y: 0.5}, {X: l.P90, Y: 0.9}, {X: l.P99, Y: 0.99}, {X: l.P999, Y: 0.999}, {X: l.Max, Y: 1}} {
			xys = append(xys, c)
		}
	}
	return slices.DeleteFunc(xys, func(xy plotter.XY) bool {
		return !(xy.X > 0) || math.IsInf(xy.X, 0) || math.IsNaN(xy.Y)
	})
}

// serverColors follow serverOrder: xdpns in blues and green, the others
// in warm colours (Okabe-Ito, readable with colour blindness).
var serverColors = []color.Color{
	color.RGBA{0x00, 0x72, 0xb2, 0xff}, // xdpns-native
	color.RGBA{0x56, 0xb4, 0xe9, 0xff}, // xdpns-generic
	color.RGBA{0x00, 0x9e, 0x73, 0xff}, // xdpns-user
	color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // knot-xdp
	color.RGBA{0xd5, 0x5e, 0x00, 0xff}, // knot-udp
	color.RGBA{0xcc, 0x79, 0xa7, 0xff}, // nsd
	color.RGBA{0x55, 0x55, 0x55, 0xff}, // bind
}

// serverColor keeps a server's colour the same in every plot and every
// report.
func serverColor(srv string) color.Color {
	if i := slices.Index(serverOrder, srv); i >= 0 && i < len(serverColors) {
		return serverColors[i]
	}
	var h int
	for _, c := range srv {
		h = h*31 + int(c)
	}
	return otherColors[(h&0x7fffffff)%len(otherColors)]
}

// otherColors stay clear of serverColors.
var otherColors = []color.Color{
	color.RGBA{0x00, 0x00, 0x00, 0xff},
	color.RGBA{0xa0, 0xa0, 0xa0, 0xff},
	color.RGBA{0x8b, 0x6d, 0x00, 0xff},
}

func fixedRates(sums []Summary) []int {
	var out []int
	for _, sc := range scenarios(sums) {
		for _, srv := range servers(sums, sc) {
			if s := fixedOf(sums, sc, srv); s != nil && !slices.Contains(out, s.Offered) {
				out = append(out, s.Offered)
			}
		}
	}
	return out
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// qpsTicks labels a q/s axis 200k, 400k, … rather than 200000.
type qpsTicks struct{}

func (qpsTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if !ts[i].IsMinor() {
			ts[i].Label = qps(ts[i].Value)
		}
	}
	return ts
}

// microTicks labels a log axis of microseconds as 100 µs, 1 ms, 10 ms.
type microTicks struct{}

func (microTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.LogTicks{Prec: -1}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].IsMinor() {
			continue
		}
		switch v := ts[i].Value; {
		case v >= 1e6:
			ts[i].Label = fmt.Sprintf("%g s", v/1e6)
		case v >= 1e3:
			ts[i].Label = fmt.Sprintf("%g ms", v/1e3)
		default:
			ts[i].Label = fmt.Sprintf("%g µs", v)
		}
	}
	return ts
}

package report

import (
	"cmp"
	"slices"
)

// serverOrder puts xdpns first and the baselines after it, so every
// table and legend reads the same way whatever order the runs came in.
var serverOrder = []string{
	"xdpns-native", "xdpns-generic", "xdpns-user",
	"knot-xdp", "knot-udp", "nsd", "bind",
}

// compareServers orders servers by serverOrder, unknown ones after
// them alphabetically.
func compareServers(a, b string) int {
	ia, ib := slices.Index(serverOrder, a), slices.Index(serverOrder, b)
	if ia < 0 {
		ia = len(serverOrder)
	}
	if ib < 0 {
		ib = len(serverOrder)
	}
	return cmp.Or(cmp.Compare(ia, ib), cmp.Compare(a, b))
}

// comparePhases puts saturation before the fixed rate: throughput is the
// headline, the fixed rate the CPU comparison.
func comparePhases(a, b string) int {
	rank := func(p string) int {
		switch p {
		case "saturation":
			return 0
		case "fixed":
			return 1
		}
		return 2
	}
	return cmp.Or(cmp.Compare(rank(a), rank(b)), cmp.Compare(a, b))
}

type point struct {
	scenario, server, generator, phase string
	offered                            int
}

// Summarize takes the medians over rounds of each (scenario, server,
// generator, phase, offered) point. Scenarios and generators keep the
// order they were first seen in; servers follow serverOrder; saturation
// comes before the fixed rate, lower offered rates first.
func Summarize(runs []Run) []Summary {
	groups := map[point][]Run{}
	var points []point
	scenarioRank := map[string]int{}
	generatorRank := map[string]int{}
	for _, r := range runs {
		if _, ok := scenarioRank[r.Scenario]; !ok {
			scenarioRank[r.Scenario] = len(scenarioRank)
		}
		if _, ok := generatorRank[r.Generator]; !ok {
			generatorRank[r.Generator] = len(generatorRank)
		}
		p := point{r.Scenario, r.Server, r.Generator, r.Phase, r.Offered}
		if _, ok := groups[p]; !ok {
			points = append(points, p)
		}
		groups[p] = append(groups[p], r)
	}
	slices.SortFunc(points, func(a, b point) int {
		return cmp.Or(
			cmp.Compare(scenarioRank[a.scenario], scenarioRank[b.scenario]),
			compareServers(a.server, b.server),
			cmp.Compare(generatorRank[a.generator], generatorRank[b.generator]),
			comparePhases(a.phase, b.phase),
			cmp.Compare(a.offered, b.offered),
		)
	})

	sums := make([]Summary, 0, len(points))
	for _, p := range points {
		sums = append(sums, summarize(p, groups[p]))
	}
	return sums
}

func summarize(p point, runs []Run) Summary {
	byQPS := slices.Clone(runs)
	slices.SortStableFunc(byQPS, func(a, b Run) int { return cmp.Compare(a.QPS, b.QPS) })
	field := func(f func(Run) float64) float64 {
		vs := make([]float64, len(runs))
		for i, r := range runs {
			vs[i] = f(r)
		}
		return median(vs)
	}
	// -1 means "not known" for a run; a median over known values only
	// keeps one unknown round from dragging the share down.
	var inXDP []float64
	for _, r := range runs {
		if r.InXDP >= 0 {
			inXDP = append(inXDP, r.InXDP)
		}
	}
	xdp := -1.0
	if len(inXDP) > 0 {
		xdp = median(inXDP)
	}
	return Summary{
		Scenario:      p.scenario,
		Server:        p.server,
		Generator:     p.generator,
		Phase:         p.phase,
		Offered:       p.offered,
		Rounds:        len(runs),
		QPS:           field(func(r Run) float64 { return r.QPS }),
		QPSMin:        byQPS[0].QPS,
		QPSMax:        byQPS[len(byQPS)-1].QPS,
		AnswerRatio:   field(func(r Run) float64 { return r.AnswerRatio }),
		Correct:       field(func(r Run) float64 { return r.Correct }),
		ServerCPU:     field(func(r Run) float64 { return r.ServerCPU }),
		ServerNAPI:    field(func(r Run) float64 { return r.ServerNAPI }),
		ServerProc:    field(func(r Run) float64 { return r.ServerProc }),
		CPUPerMillion: field(func(r Run) float64 { return r.CPUPerMillion }),
		InXDP:         xdp,
		// With an even number of rounds no run sits at the median;
		// the lower middle one is a real run, not a blend of two.
		Latency: byQPS[(len(byQPS)-1)/2].Latency,
	}
}

// median of a non-empty slice; the mean of the two middle values when
// the count is even.
func median(vs []float64) float64 {
	s := slices.Clone(vs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

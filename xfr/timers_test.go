package xfr

import (
	"testing"
	"time"
)

func TestTimers(t *testing.T) {
	tm := Timers{
		RefreshMin: 10 * time.Second, RefreshMax: time.Hour,
		RetryMin: 5 * time.Second, RetryMax: 10 * time.Minute,
		ExpireMin: time.Minute, ExpireMax: 24 * time.Hour,
		Jitter: 0.2,
	}
	cases := []struct {
		name      string
		got, want time.Duration
	}{
		{"refresh in range", tm.refreshIn(600), 10 * time.Minute},
		{"refresh below min", tm.refreshIn(1), 10 * time.Second},
		{"refresh above max", tm.refreshIn(86400), time.Hour},
		{"retry below min", tm.retryIn(0), 5 * time.Second},
		{"retry above max", tm.retryIn(7200), 10 * time.Minute},
		{"expire in range", tm.expireIn(7200, 60), 2 * time.Hour},
		{"expire above max", tm.expireIn(1<<31, 60), 24 * time.Hour},
		{"expire below min", tm.expireIn(1, 1), time.Minute},
		{"expire not before refresh", tm.expireIn(120, 3000), 50 * time.Minute},
		{"bootstrap 1", tm.bootstrapIn(1), 5 * time.Second},
		{"bootstrap 3", tm.bootstrapIn(3), 20 * time.Second},
		{"bootstrap capped", tm.bootstrapIn(100), 10 * time.Minute},
	}
	for _, c := range cases {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestJitter(t *testing.T) {
	tm := Timers{Jitter: 0.1}
	d := 100 * time.Second
	seen := map[time.Duration]bool{}
	for range 1000 {
		j := tm.jitter(d)
		if j > d || j < 90*time.Second {
			t.Fatalf("jitter(%v) = %v, want within [90s, 100s]", d, j)
		}
		seen[j] = true
	}
	if len(seen) < 100 {
		t.Errorf("jitter produced only %d distinct values in 1000 draws", len(seen))
	}
	if got := (Timers{Jitter: -1}).jitter(d); got != d {
		t.Errorf("negative jitter: got %v, want %v", got, d)
	}
}

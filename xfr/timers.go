package xfr

import (
	"math/rand/v2"
	"time"
)

func clamp(d, lo, hi time.Duration) time.Duration {
	return min(max(d, lo), hi)
}

func secs(s uint32) time.Duration { return time.Duration(s) * time.Second }

// refreshIn is the wait before the next SOA check after a success.
func (t Timers) refreshIn(refresh uint32) time.Duration {
	return clamp(secs(refresh), t.RefreshMin, t.RefreshMax)
}

// retryIn is the wait after a failed check.
func (t Timers) retryIn(retry uint32) time.Duration {
	return clamp(secs(retry), t.RetryMin, t.RetryMax)
}

// expireIn is how long a zone stays served after its last successful check.
// It is never shorter than the refresh interval: a zone must not expire
// before its first refresh is due.
func (t Timers) expireIn(expire, refresh uint32) time.Duration {
	return max(clamp(secs(expire), t.ExpireMin, t.ExpireMax), t.refreshIn(refresh))
}

// bootstrapIn is the wait after the n-th failed attempt (n >= 1) to get a
// zone we have never held: there are no SOA timers yet, so back off from
// RetryMin, doubling, up to RetryMax.
func (t Timers) bootstrapIn(n int) time.Duration {
	d := t.RetryMin
	for i := 1; i < n && d < t.RetryMax; i++ {
		d *= 2
	}
	return min(d, t.RetryMax)
}

// jitter takes up to a fraction t.Jitter off d, at random, so zones that
// started together drift apart instead of polling in step. It never
// lengthens d: a refresh is never later than the SOA asks.
func (t Timers) jitter(d time.Duration) time.Duration {
	if t.Jitter <= 0 || d <= 0 {
		return d
	}
	return d - time.Duration(rand.Float64()*t.Jitter*float64(d))
}

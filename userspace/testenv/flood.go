package testenv

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"sync/atomic"
	"time"
)

// FloodResult counts the responses to a flood.
type FloodResult struct {
	Sent      int           // queries written
	Answered  int           // responses without TC
	Truncated int           // responses with TC=1 (an RRL slip, or too large)
	Elapsed   time.Duration // from the first query to the last
}

// Flood sends count copies of the DNS query q (IDs 0, 1, ...) on the
// connected UDP socket c at about qps, then waits linger for the last
// responses, and counts them. Bounded in count and time: count queries,
// count/qps + linger.
func Flood(c net.Conn, q []byte, count, qps int, linger time.Duration) FloodResult {
	var answered, truncated atomic.Int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, net.ErrClosed) {
				return
			}
			if err != nil || n < 12 || buf[2]&0x80 == 0 {
				continue
			}
			if buf[2]&0x02 != 0 {
				truncated.Add(1)
			} else {
				answered.Add(1)
			}
		}
	}()
	pkt := append([]byte{}, q...)
	start := time.Now()
	sent := 0
	// Paced in steps of a millisecond's worth: sleeping per query is too
	// coarse at thousands a second.
	step := max(1, qps/1000)
	for i := 0; i < count; i++ {
		binary.BigEndian.PutUint16(pkt, uint16(i))
		if _, err := c.Write(pkt); err == nil {
			sent++
		}
		if (i+1)%step == 0 {
			if d := time.Until(start.Add(time.Duration(i+1) * time.Second / time.Duration(qps))); d > 0 {
				time.Sleep(d)
			}
		}
	}
	elapsed := time.Since(start)
	_ = c.SetReadDeadline(time.Now().Add(linger))
	<-done
	_ = c.SetReadDeadline(time.Time{})
	return FloodResult{Sent: sent, Answered: int(answered.Load()), Truncated: int(truncated.Load()), Elapsed: elapsed}
}

package lab

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// userHZ is the unit of /proc/stat (USER_HZ, 100 on every architecture Go
// runs Linux on but alpha and ia64).
const userHZ = 100

// CPUTimes is one reading of a CPU's counters from /proc/stat.
type CPUTimes struct {
	Idle  time.Duration // idle + iowait
	Steal time.Duration // taken by the hypervisor
	Total time.Duration // every field
}

// ReadCPU reads CPU cpu's times. With the idle tick off (NOHZ, the default)
// the kernel reports idle time measured at each idle entry and exit, not
// sampled at ticks; the unit is 10 ms, so read it over seconds.
func ReadCPU(cpu int) (CPUTimes, error) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return CPUTimes{}, err
	}
	defer f.Close()
	want := "cpu" + strconv.Itoa(cpu)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fs := strings.Fields(sc.Text())
		if len(fs) < 9 || fs[0] != want {
			continue
		}
		var v [8]int64 // user nice system idle iowait irq softirq steal
		var t CPUTimes
		for i := range v {
			v[i], _ = strconv.ParseInt(fs[1+i], 10, 64)
			t.Total += ticks(v[i])
		}
		t.Idle = ticks(v[3] + v[4])
		t.Steal = ticks(v[7])
		return t, nil
	}
	return CPUTimes{}, fmt.Errorf("/proc/stat: no %s", want)
}

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// TaskRuntime is the CPU time of one task (a thread, e.g. a kernel thread)
// from /proc/PID/schedstat: nanoseconds the scheduler counted it running,
// not tick samples.
func TaskRuntime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/schedstat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0, fmt.Errorf("/proc/%d/schedstat: empty", pid)
	}
	ns, err := strconv.ParseInt(f[0], 10, 64)
	return time.Duration(ns), err
}

// TasksRuntime sums TaskRuntime over pids (a task that is gone counts 0).
func TasksRuntime(pids []int) time.Duration {
	var sum time.Duration
	for _, p := range pids {
		d, _ := TaskRuntime(p)
		sum += d
	}
	return sum
}

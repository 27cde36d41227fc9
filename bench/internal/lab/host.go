package lab

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Machine describes where a benchmark ran, for its report.
type Machine struct {
	CPU    string `json:"cpu"`    // model name from /proc/cpuinfo
	Cores  int    `json:"cores"`  // CPUs online
	Kernel string `json:"kernel"` // uname -r
}

func (m Machine) String() string {
	return fmt.Sprintf("%s, %d CPUs, kernel %s", m.CPU, m.Cores, m.Kernel)
}

// ThisMachine reads the CPU model, the CPUs online and the kernel release.
func ThisMachine() Machine {
	m := Machine{CPU: "unknown CPU", Cores: runtime.NumCPU()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		n := 0
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			switch strings.TrimSpace(k) {
			case "model name":
				if ok && m.CPU == "unknown CPU" {
					m.CPU = strings.TrimSpace(v)
				}
			case "processor":
				n++
			}
		}
		f.Close()
		if n > 0 {
			m.Cores = n
		}
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	return m
}

// PinSelf pins every thread of this process to cpu (threads created later
// inherit it). It does nothing for cpu < 0.
func PinSelf(cpu int) error {
	if cpu < 0 {
		return nil
	}
	return pinTasks("/proc/self/task", cpu)
}

// PinTree pins every thread of pid and of its descendants to cpu (threads
// and processes they create later inherit it): a server loads on every
// CPU, then answers on one. It does nothing for cpu < 0.
func PinTree(pid, cpu int) error {
	if cpu < 0 {
		return nil
	}
	for _, p := range Tree(pid) {
		if err := pinTasks(fmt.Sprintf("/proc/%d/task", p), cpu); err != nil {
			return err
		}
	}
	return nil
}

// pinTasks pins the threads listed in dir (a /proc task directory) to cpu.
func pinTasks(dir string, cpu int) error {
	var set unix.CPUSet
	set.Set(cpu)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, &set); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("pin thread %d to CPU %d: %w", tid, cpu, err)
		}
	}
	return nil
}

// Tree returns pid and every process descended from it (NSD serves from
// forked children).
func Tree(pid int) []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	var walk func(int)
	walk = func(p int) {
		out = append(out, p)
		for _, c := range children[p] {
			walk(c)
		}
	}
	walk(pid)
	return out
}

// TreeRuntime sums the CPU time of every thread of pid and of its
// descendants, from schedstat: precise run time in nanoseconds, not tick
// samples.
func TreeRuntime(pid int) time.Duration {
	var total time.Duration
	for _, p := range Tree(pid) {
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p))
		for _, t := range tasks {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", p, t.Name()))
			if err != nil {
				continue
			}
			f := strings.Fields(string(b))
			if len(f) > 0 {
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				total += time.Duration(ns)
			}
		}
	}
	return total
}

// Memory is the memory of a process tree, in bytes.
type Memory struct {
	RSS int64 `json:"rss"` // sum of VmRSS: pages shared by forked children count once per process
	PSS int64 `json:"pss"` // sum of Pss (smaps_rollup): shared pages split between their users
}

// TreeMemory reads the memory of pid and its descendants.
func TreeMemory(pid int) Memory {
	var m Memory
	for _, p := range Tree(pid) {
		m.RSS += statusKB(fmt.Sprintf("/proc/%d/status", p), "VmRSS:") << 10
		m.PSS += statusKB(fmt.Sprintf("/proc/%d/smaps_rollup", p), "Pss:") << 10
	}
	return m
}

// statusKB returns the "NAME  123 kB" value of the first line starting
// with name.
func statusKB(path, name string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, name); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

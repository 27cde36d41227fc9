package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// PeakKB is a process's peak resident set (VmHWM, KiB), 0 when it cannot
// be read. Only that process: the peaks of a tree's processes do not
// coincide, so they are not summed.
func PeakKB(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

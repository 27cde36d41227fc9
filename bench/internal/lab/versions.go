package lab

import (
	"os/exec"
	"strings"
)

// KnotVersion, NSDVersion and NamedVersion say which peer a report
// measured, from the installed daemons ("Knot 3.2.6", "NSD 4.6.1",
// "BIND 9.18.49-1~deb12u3-Debian"); "... ?" when the daemon is missing.
func KnotVersion() string {
	bin, err := LookSbin("knotd")
	if err != nil {
		return "Knot ?"
	}
	v := FirstLine(exec.Command(bin, "--version")) // knotd (Knot DNS), version 3.2.6
	if _, after, ok := strings.Cut(v, "version "); ok {
		return "Knot " + after
	}
	return v
}

func NSDVersion() string {
	bin, err := LookSbin("nsd")
	if err != nil {
		return "NSD ?"
	}
	return strings.Replace(FirstLine(exec.Command(bin, "-v")), " version", "", 1) // NSD version 4.6.1
}

func NamedVersion() string {
	bin, err := LookSbin("named")
	if err != nil {
		return "BIND ?"
	}
	f := strings.Fields(FirstLine(exec.Command(bin, "-v"))) // BIND 9.18.49-1~deb12u3-Debian (Extended ...
	if len(f) >= 2 {
		return f[0] + " " + f[1]
	}
	return strings.Join(f, " ")
}

// FirstLine runs cmd and returns the first line of its output.
func FirstLine(cmd *exec.Cmd) string {
	out, _ := cmd.CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}

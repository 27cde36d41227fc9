package loader

import (
	"regexp"
	"strconv"
	"testing"

	"github.com/cilium/ebpf"
)

// TestVerifierHeadroom: the program stays clear of the verifier's million
// instructions. The count grows with every path through the program (the
// index lookup inlined at seven sites once took it past the limit); it is
// logged so that a change can be compared with the one before.
func TestVerifierHeadroom(t *testing.T) {
	requireRoot(t)
	spec, err := loadXdpns()
	if err != nil {
		t.Fatal(err)
	}
	coll, err := ebpf.NewCollectionWithOptions(spec, ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
	if err != nil {
		t.Fatal(err)
	}
	defer coll.Close()
	log := coll.Programs["xdpns_answer"].VerifierLog
	m := regexp.MustCompile(`processed (\d+) insns`).FindStringSubmatch(log)
	if m == nil {
		t.Fatalf("no instruction count in the verifier's log:\n%s", log)
	}
	n, _ := strconv.Atoi(m[1])
	t.Logf("verifier processed %d instructions of 1000000", n)
	if n > 950_000 {
		t.Errorf("verifier processed %d instructions: within 5%% of its limit", n)
	}
}

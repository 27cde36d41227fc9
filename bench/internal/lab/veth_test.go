package lab

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/xdpns/xdpns/userspace/testenv"
)

// TestVeth builds a lab, checks the tuning took (a threaded NAPI thread on
// each end, pinnable), that the ends talk over UDP, and that Close leaves
// no namespace behind.
func TestVeth(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireBinary(t, "ip")
	v, err := NewVeth("tv")
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	srv, cli, err := v.PinNAPI(0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if len(srv) != 1 || len(cli) != 1 {
		t.Errorf("NAPI threads: server %v, client %v; want one each", srv, cli)
	}
	var pc net.PacketConn
	if err := v.InServer(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", v.Server4.String()+":0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var c net.Conn
	if err := v.InClient(func() error {
		var err error
		c, err = net.Dial("udp4", pc.LocalAddr().String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	pc.SetReadDeadline(time.Now().Add(2 * time.Second))
	buf := make([]byte, 16)
	n, _, err := pc.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "ping" {
		t.Fatalf("server read %q, %v", buf[:n], err)
	}
	if id, mode, err := v.ServerXDP(); err != nil || id != 0 {
		t.Errorf("server XDP: %d %q %v, want none", id, mode, err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{v.ServerNS, v.ClientNS} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			t.Errorf("namespace %s left behind", ns)
		}
	}
}

package server

import (
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgConn moves datagrams in batches with recvmmsg and sendmmsg, every
// header, buffer and address allocated once. A reply goes to the address
// its query came from, straight from the receive header's sockaddr. (x/net's
// ReadBatch/WriteBatch, used before, turned each sockaddr into a
// *net.UDPAddr and back and packed the headers anew on each call: about a
// tenth of a saturated server's CPU.)
type mmsgConn struct {
	rc syscall.RawConn

	in    []unix.Mmsghdr
	inIov []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for either family
	bufs  [][]byte
	oob   [][]byte // nil without control messages
	used  int      // headers the last read filled (their lengths to reset)

	out     []unix.Mmsghdr
	outIov  []unix.Iovec
	outData [][]byte // what out points to, kept alive until sent
	outOOB  [][]byte
}

func newMmsgConn(c *net.UDPConn, n, size, oobSize int) (*mmsgConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	m := &mmsgConn{
		rc: rc,
		in: make([]unix.Mmsghdr, n), inIov: make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n), bufs: make([][]byte, n),
		out: make([]unix.Mmsghdr, n), outIov: make([]unix.Iovec, n),
		outData: make([][]byte, n), outOOB: make([][]byte, n),
	}
	if oobSize > 0 {
		m.oob = make([][]byte, n)
	}
	for i := range m.in {
		m.bufs[i] = make([]byte, size)
		m.inIov[i].Base = &m.bufs[i][0]
		m.inIov[i].SetLen(size)
		h := &m.in[i].Hdr
		h.Name = (*byte)(unsafe.Pointer(&m.names[i]))
		h.Iov = &m.inIov[i]
		h.SetIovlen(1)
		if m.oob != nil {
			m.oob[i] = make([]byte, oobSize)
			h.Control = &m.oob[i][0]
		}
		m.out[i].Hdr.Iov = &m.outIov[i]
		m.out[i].Hdr.SetIovlen(1)
	}
	m.used = n
	return m, nil
}

// read waits for datagrams and receives up to a batch of them.
func (m *mmsgConn) read() (int, error) {
	for i := range m.used {
		h := &m.in[i].Hdr
		h.Namelen = uint32(unsafe.Sizeof(m.names[i]))
		if m.oob != nil {
			h.SetControllen(len(m.oob[i]))
		}
		h.Flags = 0
	}
	var n int
	var errno syscall.Errno
	err := m.rc.Read(func(fd uintptr) bool {
		for {
			r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.in[0])), uintptr(len(m.in)),
				unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false // wait in the netpoller
			}
			n, errno = int(r), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		m.used = len(m.in)
		return 0, errno
	}
	m.used = n
	return n, nil
}

// packet is datagram i of the last read.
func (m *mmsgConn) packet(i int) []byte {
	return m.bufs[i][:min(int(m.in[i].Len), len(m.bufs[i]))]
}

// control is the control data that came with datagram i.
func (m *mmsgConn) control(i int) []byte {
	if m.oob == nil {
		return nil
	}
	return m.oob[i][:m.in[i].Hdr.Controllen]
}

// from is the source address of datagram i.
func (m *mmsgConn) from(i int) netip.Addr {
	sa := &m.names[i]
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrFrom4(sa4.Addr)
	case unix.AF_INET6:
		return netip.AddrFrom16(sa.Addr).Unmap()
	}
	return netip.Addr{}
}

// reply queues data (and control data, or nil) as reply k to datagram i.
func (m *mmsgConn) reply(k, i int, data, oob []byte) {
	m.outData[k], m.outOOB[k] = data, oob
	m.outIov[k].Base = nil
	if len(data) > 0 {
		m.outIov[k].Base = &data[0]
	}
	m.outIov[k].SetLen(len(data))
	h := &m.out[k].Hdr
	h.Name = (*byte)(unsafe.Pointer(&m.names[i]))
	h.Namelen = m.in[i].Hdr.Namelen
	h.Control = nil
	h.SetControllen(0)
	if len(oob) > 0 {
		h.Control = &oob[0]
		h.SetControllen(len(oob))
	}
}

// write sends replies from..k-1 of those queued, returning how many went.
func (m *mmsgConn) write(from, k int) (int, error) {
	var n int
	var errno syscall.Errno
	err := m.rc.Write(func(fd uintptr) bool {
		for {
			r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.out[from])), uintptr(k-from),
				unix.MSG_DONTWAIT, 0, 0)
			switch e {
			case unix.EINTR:
				continue
			case unix.EAGAIN:
				return false
			}
			n, errno = int(r), e
			return true
		}
	})
	if err != nil {
		return 0, err
	}
	if errno != 0 {
		return 0, errno
	}
	return n, nil
}

// release drops the references to sent replies.
func (m *mmsgConn) release(k int) {
	for i := range k {
		m.outData[i], m.outOOB[i] = nil, nil
		m.outIov[i].Base = nil
		m.out[i].Hdr.Control = nil
	}
}

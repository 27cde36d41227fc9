package lab

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The legacy ethtool commands that set one offload (include/uapi/linux/
// ethtool.h). They take a struct ethtool_value; the kernel maps them onto
// the device's features like `ethtool -K` does. The ethtool program is not
// needed (nor installed here).
const (
	ethtoolSTSO = 0x0000001f // set TCP segmentation offload
	ethtoolSGRO = 0x0000002c // set generic receive offload
)

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct {
	cmd  uint32
	data uint32
}

// ifreqData is struct ifreq with ifr_data: the name, then a pointer.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data uintptr
	_    [16]byte // the union is 24 bytes on 64-bit
}

// setOffload turns one offload of ifname on or off, in the calling
// thread's network namespace.
func setOffload(ifname string, cmd uint32, on bool) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	val := &ethtoolValue{cmd: cmd}
	if on {
		val.data = 1
	}
	var req ifreqData
	if len(ifname) >= len(req.name) {
		return fmt.Errorf("interface name %q too long", ifname)
	}
	copy(req.name[:], ifname)
	req.data = uintptr(unsafe.Pointer(val))
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&req)))
	runtime.KeepAlive(val)
	if errno != 0 {
		return errno
	}
	return nil
}

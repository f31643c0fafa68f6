package xdp

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// VLAN tags the kernel keeps out of the frame. An 802.1Q tag reaches the
// program only inside the frame's data. A NIC with rx VLAN offload on
// (ethtool's rxvlan, "rx-vlan-offload") strips it into its receive
// descriptor, and the driver hands it to the stack beside the frame
// (skb->vlan_tci); a VLAN device whose lower device has tx VLAN offload
// on (txvlan) hands its tag out of band the same way, so over veth the
// peer's txvlan decides (veth never strips a tag; its own rxvlan changes
// nothing). Either way the program sees an untagged frame, in driver mode
// (veth_xdp_rcv_skb runs it on the data only) and in generic mode
// (bpf_prog_run_generic_xdp builds its buffer from skb->data at the MAC
// header; do_xdp_generic runs before __netif_receive_skb_core's
// skb_vlan_untag, so a tag in the data is seen). The device-bound program
// (driver mode, loadBound) asks the driver for the tag and passes such a
// frame to the kernel; otherwise (generic mode, or a driver without
// bpf_xdp_metadata_rx_vlan_tag) the reply leaves untagged, on the wrong
// VLAN.

// ethtool's legacy feature-flag commands and bits (uapi linux/ethtool.h).
const (
	ethtoolGFlags = 0x25
	ethtoolSFlags = 0x26
	flagTxVLAN    = 1 << 7 // NETIF_F_HW_VLAN_CTAG_TX
	flagRxVLAN    = 1 << 8 // NETIF_F_HW_VLAN_CTAG_RX
)

// VLANOffload reports the interface's rx and tx VLAN offload (ethtool's
// rxvlan and txvlan), read with the ETHTOOL_GFLAGS ioctl in the calling
// thread's network namespace. On a NIC, rx on means that tagged frames
// reach the XDP program untagged (see above).
func VLANOffload(name string) (rx, tx bool, err error) {
	v, err := ethtoolFlags(name, ethtoolGFlags, 0)
	return v&flagRxVLAN != 0, v&flagTxVLAN != 0, err
}

// SetVLANOffload turns the interface's rx and tx VLAN offload on or off
// (as `ethtool -K IFACE rxvlan on|off txvlan on|off`), the other flags
// left as they are.
func SetVLANOffload(name string, rx, tx bool) error {
	if err := checkNamespace(); err != nil {
		return err
	}
	v, err := ethtoolFlags(name, ethtoolGFlags, 0)
	if err != nil {
		return err
	}
	v &^= flagRxVLAN | flagTxVLAN
	if rx {
		v |= flagRxVLAN
	}
	if tx {
		v |= flagTxVLAN
	}
	_, err = ethtoolFlags(name, ethtoolSFlags, v)
	return err
}

// ethtoolFlags runs the ethtool command cmd (struct ethtool_value) on the
// interface name and returns the value it leaves.
func ethtoolFlags(name string, cmd, value uint32) (uint32, error) {
	if len(name) >= unix.IFNAMSIZ {
		return 0, fmt.Errorf("xdp: interface name %q too long", name)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socket", err)
	}
	defer unix.Close(fd)
	ev := struct{ cmd, data uint32 }{cmd, value}
	var ifr struct {
		name [unix.IFNAMSIZ]byte
		data unsafe.Pointer
		_    [16]byte // the rest of struct ifreq's union
	}
	copy(ifr.name[:], name)
	ifr.data = unsafe.Pointer(&ev)
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); e != 0 {
		return 0, fmt.Errorf("xdp: ethtool flags of %s: %w", name, os.NewSyscallError("ioctl SIOCETHTOOL", e))
	}
	return ev.data, nil
}

// StripsVLANTags reports whether the interface may take 802.1Q tags out of
// received frames before the program sees them: rx VLAN offload on, on any
// driver but veth (which never strips one; see above).
func StripsVLANTags(name string) bool {
	rx, _, err := VLANOffload(name)
	if err != nil || !rx {
		return false
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	info, err := unix.IoctlGetEthtoolDrvinfo(fd, name)
	return err != nil || unix.ByteSliceToString(info.Driver[:]) != "veth"
}

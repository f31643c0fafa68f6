package xdp

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Program is the XDP program of one interface with its two maps: the
// listeners' (port, address) set and the XSKMAP from receive queue to
// AF_XDP socket.
type Program struct {
	prog  *ebpf.Program
	ports *ebpf.Map
	xsks  *ebpf.Map
	link  link.Link
	mode  string
	bound bool // prog is the device-bound variant (loadBound)
}

// keyLen is a ports-map key: the UDP port (network order), the family (4
// or 6), a zero byte, and the address (IPv4 in the first 4 bytes; all zero
// for a wildcard listener).
const keyLen = 20

// portKey is the ports-map key of a listener on ap for family fam (4 or 6).
func portKey(ap netip.AddrPort, fam byte) [keyLen]byte {
	var k [keyLen]byte
	k[0], k[1] = byte(ap.Port()>>8), byte(ap.Port())
	k[2] = fam
	a := ap.Addr()
	switch {
	case a.IsUnspecified():
	case a.Is4() || a.Is4In6():
		a4 := a.Unmap().As4()
		copy(k[4:], a4[:])
	default:
		a16 := a.As16()
		copy(k[4:], a16[:])
	}
	return k
}

// ListenerKeys are the ports-map keys of a listener on ap. A wildcard
// stands for local, the addresses the host has: ":53" and "[::]:53" on a
// dual-stack socket those of both families, "0.0.0.0:53" the IPv4 ones,
// "[::]:53" IPv6-only the IPv6 ones. The program never redirects a
// datagram to an address that is not the host's (one it forwards, or sees
// in promiscuous mode), which the kernel would not deliver to the socket.
func ListenerKeys(ap netip.AddrPort, dualStack bool, local []netip.Addr) [][keyLen]byte {
	a := ap.Addr()
	if !a.IsUnspecified() {
		if a.Is4() || a.Is4In6() {
			return [][keyLen]byte{portKey(ap, 4)}
		}
		return [][keyLen]byte{portKey(ap, 6)}
	}
	var keys [][keyLen]byte
	for _, l := range local {
		l = l.Unmap()
		switch {
		case l.IsLoopback() || l.IsMulticast() || l.IsUnspecified():
			// never the destination of a frame that arrives on an interface
		case l.Is4() && (a.Is4() || dualStack):
			keys = append(keys, portKey(netip.AddrPortFrom(l, ap.Port()), 4))
		case !l.Is4() && !a.Is4():
			keys = append(keys, portKey(netip.AddrPortFrom(l, ap.Port()), 6))
		}
	}
	return keys
}

// LocalAddrs are the addresses of the interfaces of the calling thread's
// network namespace, for a wildcard listener (ListenerKeys).
func LocalAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, fmt.Errorf("xdp: list the local addresses: %w", err)
	}
	var out []netip.Addr
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// NewProgram loads the program and its maps for an interface whose
// queues 0..queues-1 get sockets. Datagrams on other queues pass to the
// kernel.
func NewProgram(queues int) (*Program, error) {
	ports, err := ebpf.NewMap(&ebpf.MapSpec{Name: "shardd_ports", Type: ebpf.Hash, KeySize: keyLen, ValueSize: 1, MaxEntries: 1024})
	if err != nil {
		return nil, fmt.Errorf("xdp: create the ports map: %w", err)
	}
	xsks, err := ebpf.NewMap(&ebpf.MapSpec{Name: "shardd_xsks", Type: ebpf.XSKMap, KeySize: 4, ValueSize: 4, MaxEntries: uint32(max(queues, 1))})
	if err != nil {
		_ = ports.Close()
		return nil, fmt.Errorf("xdp: create the socket map: %w", err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: programName, Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: instructions(ports.FD(), xsks.FD(), 0),
	})
	if err != nil {
		_ = ports.Close()
		_ = xsks.Close()
		return nil, fmt.Errorf("xdp: load the program: %w", err)
	}
	return &Program{prog: prog, ports: ports, xsks: xsks}, nil
}

// AddListener makes the program redirect UDP datagrams to ap; a wildcard
// address stands for the addresses the calling thread's network namespace
// has now (LocalAddrs): datagrams to one added later pass to the kernel
// (the UDP sockets).
func (p *Program) AddListener(ap netip.AddrPort, dualStack bool) error {
	var local []netip.Addr
	if ap.Addr().IsUnspecified() {
		var err error
		if local, err = LocalAddrs(); err != nil {
			return err
		}
	}
	keys := ListenerKeys(ap, dualStack, local)
	if len(keys) == 0 {
		return fmt.Errorf("xdp: listener %s: no local address of its family to redirect", ap)
	}
	for _, k := range keys {
		if err := p.ports.Put(k[:], []byte{1}); err != nil {
			return fmt.Errorf("xdp: add listener %s: %w", ap, err)
		}
	}
	return nil
}

// SetSocket makes the program redirect what arrives on queue to s.
func (p *Program) SetSocket(queue int, s *Socket) error {
	if err := p.xsks.Put(uint32(queue), uint32(s.FD())); err != nil {
		return fmt.Errorf("xdp: register the socket of queue %d: %w", queue, err)
	}
	return nil
}

// Attach attaches the program to the interface ifindex: in driver mode
// where the driver supports XDP (the device-bound variant where the kernel
// has it, loadBound), generic (skb) mode otherwise. The caller's thread
// must be in the interface's network namespace.
func (p *Program) Attach(ifindex int) error {
	if err := checkNamespace(); err != nil {
		return err
	}
	if bound, err := p.loadBound(ifindex); err == nil {
		l, err := link.AttachXDP(link.XDPOptions{Program: bound, Interface: ifindex, Flags: link.XDPDriverMode})
		if err == nil {
			p.useBound(bound)
			p.link, p.mode = l, "driver"
			return nil
		}
		_ = bound.Close()
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifindex, Flags: link.XDPDriverMode})
	p.mode = "driver"
	if err != nil {
		var gerr error
		l, gerr = link.AttachXDP(link.XDPOptions{Program: p.prog, Interface: ifindex, Flags: link.XDPGenericMode})
		p.mode = "generic"
		if gerr != nil {
			return fmt.Errorf("xdp: attach to ifindex %d: %w", ifindex, errors.Join(err, gerr))
		}
	}
	p.link = l
	return nil
}

// Mode is "driver" or "generic" once attached, "inherited" once adopted.
func (p *Program) Mode() string { return p.mode }

// DeviceBound reports whether the attached program is the device-bound
// variant, which passes a frame whose VLAN tag the driver took out of it
// to the kernel instead of answering it untagged (loadBound).
func (p *Program) DeviceBound() bool { return p.bound }

// devBoundOnly is BPF_F_XDP_DEV_BOUND_ONLY: the program runs on its
// interface only, and may call the driver's XDP metadata kfuncs.
const devBoundOnly = 1 << 6

// loadBound loads the program bound to the interface ifindex (Linux 6.8+
// with kernel BTF): it also asks the driver, for a datagram it would
// redirect, whether the frame came with a VLAN tag taken out of its data
// (bpf_xdp_metadata_rx_vlan_tag: rx VLAN offload on a NIC, or over veth a
// peer's VLAN device with tx VLAN offload), and passes such a frame to
// the kernel, which knows its VLAN device, instead of answering it
// untagged on the wrong VLAN. A driver without the kfunc answers "not
// supported", and such frames are redirected as before. A device-bound
// program attaches in driver mode only.
func (p *Program) loadBound(ifindex int) (*ebpf.Program, error) {
	id, err := vlanTagKfunc()
	if err != nil {
		return nil, err
	}
	return ebpf.NewProgram(&ebpf.ProgramSpec{
		Name: programName, Type: ebpf.XDP, License: "Dual BSD/GPL",
		Instructions: instructions(p.ports.FD(), p.xsks.FD(), id),
		Ifindex:      uint32(ifindex), Flags: devBoundOnly,
	})
}

// useBound makes bound, attached, the program p holds.
func (p *Program) useBound(bound *ebpf.Program) {
	_ = p.prog.Close()
	p.prog, p.bound = bound, true
}

// vlanTagKfunc is the kernel's BTF id of bpf_xdp_metadata_rx_vlan_tag.
func vlanTagKfunc() (btf.TypeID, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return 0, err
	}
	fn, err := spec.AnyTypeByName("bpf_xdp_metadata_rx_vlan_tag")
	if err != nil {
		return 0, err
	}
	if _, ok := fn.(*btf.Func); !ok {
		return 0, fmt.Errorf("xdp: bpf_xdp_metadata_rx_vlan_tag is a %T in the kernel's BTF", fn)
	}
	return spec.TypeID(fn)
}

// ID is the kernel's id of the loaded program (as bpftool shows it).
func (p *Program) ID() uint32 {
	info, err := p.prog.Info()
	if err != nil {
		return 0
	}
	id, _ := info.ID()
	return uint32(id)
}

// Close detaches the program and frees it and its maps.
func (p *Program) Close() error {
	var errs []error
	if p.link != nil {
		errs = append(errs, p.link.Close())
	}
	errs = append(errs, p.prog.Close(), p.ports.Close(), p.xsks.Close())
	return errors.Join(errs...)
}

// XDP return codes and context offsets (struct xdp_md).
const (
	xdpPass        = 2
	ctxData        = 0
	ctxDataEnd     = 4
	ctxRxQueue     = 16
	keyOff         = -24 // the ports-map key on the stack
	etherIPv4LE    = 0x0008
	etherIPv6LE    = 0xdd86
	etherVLANLE    = 0x0081
	fragMaskLE     = 0xff3f
	labelPass      = "pass"
	labelIPv4      = "ipv4"
	labelIPv6      = "ipv6"
	labelL3        = "l3"
	labelLookup    = "lookup"
	registerPacket = asm.R7 // the IP header
	tagOff         = -32    // the out-of-band tag's TPID and TCI on the stack (loadBound)
)

// instructions is the program: parse Ethernet (and one 802.1Q tag),
// IPv4 without options or fragments or IPv6 with UDP next, look the
// (port, family, destination address) up in the ports map (a wildcard
// listener's addresses are all there: AddListener), and redirect a match
// to the socket of the receive queue (XDP_PASS when the queue has none). R6 holds the context,
// R7 the IP header; every packet read is bounds-checked against data_end.
// Packet loads of 16 bits and more read network order as little-endian,
// hence the swapped constants. With vlanTag (the kfunc's BTF id, not 0)
// a match whose frame came with a tag taken out of it passes instead
// (loadBound).
func instructions(portsFD, xsksFD int, vlanTag btf.TypeID) asm.Instructions {
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R2, asm.R6, ctxData, asm.Word),
		asm.LoadMem(asm.R3, asm.R6, ctxDataEnd, asm.Word),
		asm.Mov.Reg(asm.R4, asm.R2),
		asm.Add.Imm(asm.R4, ethLen),
		asm.JGT.Reg(asm.R4, asm.R3, labelPass),
		asm.LoadMem(asm.R5, asm.R2, 12, asm.Half),
		asm.Mov.Reg(registerPacket, asm.R4),
		asm.JNE.Imm(asm.R5, etherVLANLE, labelL3),
		asm.Add.Imm(asm.R4, vlanLen),
		asm.JGT.Reg(asm.R4, asm.R3, labelPass),
		asm.LoadMem(asm.R5, asm.R2, 16, asm.Half),
		asm.Mov.Reg(registerPacket, asm.R4),
		asm.Mov.Imm(asm.R0, 0).WithSymbol(labelL3),
	}
	ins = append(ins, zeroKey()...)
	ins = append(ins,
		asm.JEq.Imm(asm.R5, etherIPv4LE, labelIPv4),
		asm.JEq.Imm(asm.R5, etherIPv6LE, labelIPv6),
		asm.Ja.Label(labelPass),
	)
	ins = append(ins, ipv4Instructions()...)
	ins = append(ins, ipv6Instructions()...)
	return append(ins, lookupInstructions(portsFD, xsksFD, vlanTag)...)
}

func ipv4Instructions() asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R4, registerPacket).WithSymbol(labelIPv4),
		asm.Add.Imm(asm.R4, ipv4Len+udpLen),
		asm.JGT.Reg(asm.R4, asm.R3, labelPass),
		asm.LoadMem(asm.R5, registerPacket, 0, asm.Byte),
		asm.JNE.Imm(asm.R5, ipv4Vers5, labelPass),
		asm.LoadMem(asm.R5, registerPacket, 9, asm.Byte),
		asm.JNE.Imm(asm.R5, protoUDP, labelPass),
		asm.LoadMem(asm.R5, registerPacket, 6, asm.Half),
		asm.And.Imm(asm.R5, fragMaskLE),
		asm.JNE.Imm(asm.R5, 0, labelPass),
		asm.LoadMem(asm.R5, registerPacket, ipv4Len+2, asm.Half),
		asm.StoreMem(asm.R10, keyOff, asm.R5, asm.Half),
		asm.StoreImm(asm.R10, keyOff+2, 4, asm.Byte),
		asm.LoadMem(asm.R5, registerPacket, 16, asm.Word),
		asm.StoreMem(asm.R10, keyOff+4, asm.R5, asm.Word),
		asm.Ja.Label(labelLookup),
	}
}

func ipv6Instructions() asm.Instructions {
	ins := asm.Instructions{
		asm.Mov.Reg(asm.R4, registerPacket).WithSymbol(labelIPv6),
		asm.Add.Imm(asm.R4, ipv6Len+udpLen),
		asm.JGT.Reg(asm.R4, asm.R3, labelPass),
		asm.LoadMem(asm.R5, registerPacket, 6, asm.Byte),
		asm.JNE.Imm(asm.R5, protoUDP, labelPass),
		asm.LoadMem(asm.R5, registerPacket, ipv6Len+2, asm.Half),
		asm.StoreMem(asm.R10, keyOff, asm.R5, asm.Half),
		asm.StoreImm(asm.R10, keyOff+2, 6, asm.Byte),
	}
	for i := int16(0); i < 16; i += 4 {
		ins = append(ins,
			asm.LoadMem(asm.R5, registerPacket, 24+i, asm.Word),
			asm.StoreMem(asm.R10, keyOff+4+i, asm.R5, asm.Word))
	}
	return ins
}

func lookupInstructions(portsFD, xsksFD int, vlanTag btf.TypeID) asm.Instructions {
	ins := asm.Instructions{
		asm.LoadMapPtr(asm.R1, portsFD).WithSymbol(labelLookup),
		asm.Mov.Reg(asm.R2, asm.R10),
		asm.Add.Imm(asm.R2, keyOff),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, labelPass),
	}
	if vlanTag != 0 {
		// bpf_xdp_metadata_rx_vlan_tag(ctx, &tpid, &tci) is 0 when the
		// driver holds a tag for the frame.
		ins = append(ins,
			asm.StoreImm(asm.R10, tagOff, 0, asm.Word),
			asm.Mov.Reg(asm.R1, asm.R6),
			asm.Mov.Reg(asm.R2, asm.R10),
			asm.Add.Imm(asm.R2, tagOff),
			asm.Mov.Reg(asm.R3, asm.R10),
			asm.Add.Imm(asm.R3, tagOff+2),
			asm.Instruction{OpCode: asm.OpCode(asm.JumpClass).SetJumpOp(asm.Call), Src: asm.PseudoKfuncCall, Constant: int64(vlanTag)},
			asm.JEq.Imm(asm.R0, 0, labelPass),
		)
	}
	return append(ins,
		asm.LoadMem(asm.R2, asm.R6, ctxRxQueue, asm.Word),
		asm.LoadMapPtr(asm.R1, xsksFD),
		asm.Mov.Imm(asm.R3, xdpPass),
		asm.FnRedirectMap.Call(),
		asm.Return(),
		asm.Mov.Imm(asm.R0, xdpPass).WithSymbol(labelPass),
		asm.Return(),
	)
}

// zeroKey zeroes the key on the stack in 32-bit stores (the instruction
// set has no 64-bit immediate store).
func zeroKey() asm.Instructions {
	var ins asm.Instructions
	for i := int16(0); i < keyLen; i += 4 {
		ins = append(ins, asm.StoreImm(asm.R10, keyOff+i, 0, asm.Word))
	}
	return ins
}

// LinkFile returns a duplicate of the attachment's link descriptor, for a
// new process to take the attachment over (Adopt): the link, and the
// program on the interface, live while any process holds it.
func (p *Program) LinkFile(name string) (*os.File, error) {
	l, ok := p.link.(interface{ FD() int })
	if !ok {
		return nil, errors.New("xdp: the program is not attached")
	}
	fd, err := unix.FcntlInt(uintptr(l.FD()), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		return nil, os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// Adopt takes over the attachment whose link f holds (LinkFile of the
// previous process) and swaps this program in, atomically: from the
// update on, datagrams go to this program's sockets, and none is left
// without a program on the way. f is closed.
func (p *Program) Adopt(f *os.File) error {
	fd, err := unix.FcntlInt(f.Fd(), unix.F_DUPFD_CLOEXEC, 3)
	_ = f.Close()
	if err != nil {
		return os.NewSyscallError("fcntl F_DUPFD_CLOEXEC", err)
	}
	l, err := link.NewFromFD(fd)
	if err != nil {
		return fmt.Errorf("xdp: inherited link: %w", err)
	}
	if p.adoptBound(l) {
		p.link, p.mode = l, "inherited"
		return nil
	}
	if err := l.Update(p.prog); err != nil {
		_ = l.Close()
		return fmt.Errorf("xdp: swap the program into the inherited link: %w", err)
	}
	p.link, p.mode = l, "inherited"
	return nil
}

// adoptBound swaps the device-bound variant of the program into the
// inherited link l where the kernel has it and the link is in driver mode
// (the kernel refuses a device-bound program in generic mode), and
// reports whether it did.
func (p *Program) adoptBound(l link.Link) bool {
	info, err := l.Info()
	if err != nil || info.XDP() == nil {
		return false
	}
	bound, err := p.loadBound(int(info.XDP().Ifindex))
	if err != nil {
		return false
	}
	if err := l.Update(bound); err != nil {
		_ = bound.Close()
		return false
	}
	p.useBound(bound)
	return true
}

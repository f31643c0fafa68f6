package xdp

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Defaults of Options' zero fields.
const (
	DefaultFrameSize = 4096 // one page: the kernel's largest aligned chunk that fits any MTU-sized frame
	DefaultRingSize  = 2048
)

// Options sizes one socket: RingSize descriptors per ring (a power of two)
// and twice as many UMEM frames of FrameSize bytes, half of them lent to
// the kernel for receiving (the fill ring), half kept for replies.
type Options struct {
	FrameSize int
	RingSize  int
	// Copy forces copy mode; otherwise zero-copy is tried first and copy
	// mode taken where the driver does not offer it.
	Copy bool
	// NoBind leaves the socket unbound (Bind binds it later): the socket
	// belongs to the network namespace of the thread that opened it,
	// where Bind finds the interface.
	NoBind bool
}

// Stats are the kernel's counts for one socket (XDP_STATISTICS).
type Stats struct {
	RxDropped, RxInvalid, RxRingFull, FillRingEmpty, TxInvalid, TxRingEmpty uint64
}

// Socket is one AF_XDP socket bound to one queue of one interface, with
// its own UMEM. It is not safe for concurrent use except Stats, which any
// goroutine may call while the socket is open.
type Socket struct {
	fd        int
	ifindex   int
	queue     int
	zeroCopy  bool
	forceCopy bool
	frameSize uint64
	umem      []byte
	fill      ring // addresses we give the kernel to receive into
	comp      ring // addresses of frames the kernel has sent
	rx        ring // descriptors of received frames
	tx        ring // descriptors of frames to send
	maps      [][]byte

	free     []uint64 // UMEM addresses of TX frames not in flight
	rxAddr   []uint64 // addresses of the frames the last Receive returned
	txQueued int      // TX descriptors produced since the last kick

	mu     sync.Mutex // Stats against Close: the descriptor is not reused under a reader
	closed bool
}

// ring is one of the four single-producer single-consumer rings shared with
// the kernel: producer and consumer indexes run freely and mask into the
// descriptor array.
type ring struct {
	prod, cons *uint32
	descs      unsafe.Pointer
	mask       uint32
	cachedProd uint32 // ours, when we produce
	cachedCons uint32 // ours, when we consume
}

func (r *ring) addr(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(r.descs, uintptr(i&r.mask)*8))
}

func (r *ring) desc(i uint32) *unix.XDPDesc {
	return (*unix.XDPDesc)(unsafe.Add(r.descs, uintptr(i&r.mask)*unsafe.Sizeof(unix.XDPDesc{})))
}

// Open creates an AF_XDP socket on queue of the interface ifindex and
// binds it (zero-copy where the driver offers it, else copy mode). The
// caller's thread must be in the interface's network namespace.
func Open(ifindex, queue int, o Options) (*Socket, error) {
	if o.FrameSize == 0 {
		o.FrameSize = DefaultFrameSize
	}
	if o.RingSize == 0 {
		o.RingSize = DefaultRingSize
	}
	if o.RingSize&(o.RingSize-1) != 0 || o.FrameSize&(o.FrameSize-1) != 0 {
		return nil, fmt.Errorf("xdp: ring size %d and frame size %d must be powers of two", o.RingSize, o.FrameSize)
	}
	if err := checkNamespace(); err != nil {
		return nil, err
	}
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket AF_XDP", err)
	}
	s := &Socket{fd: fd, ifindex: ifindex, queue: queue, frameSize: uint64(o.FrameSize)}
	if err := s.setup(o); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

// setup registers the UMEM, sizes and maps the rings, lends the fill ring
// its frames and binds.
func (s *Socket) setup(o Options) error {
	frames := 2 * o.RingSize
	mem, err := unix.Mmap(-1, 0, frames*o.FrameSize, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return os.NewSyscallError("mmap UMEM", err)
	}
	s.umem = mem
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&mem[0]))), Len: uint64(len(mem)), Size: uint32(o.FrameSize)}
	if err := setsockopt(s.fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return os.NewSyscallError("setsockopt XDP_UMEM_REG", err)
	}
	size := uint32(o.RingSize)
	for _, opt := range []int{unix.XDP_UMEM_FILL_RING, unix.XDP_UMEM_COMPLETION_RING, unix.XDP_RX_RING, unix.XDP_TX_RING} {
		if err := setsockopt(s.fd, opt, unsafe.Pointer(&size), 4); err != nil {
			return os.NewSyscallError("setsockopt XDP ring size", err)
		}
	}
	if err := s.mapRings(size); err != nil {
		return err
	}
	for i := range o.RingSize {
		*s.fill.addr(uint32(i)) = uint64(i) * s.frameSize
	}
	s.fill.cachedProd = size
	atomic.StoreUint32(s.fill.prod, size)
	s.free = make([]uint64, 0, o.RingSize)
	for i := o.RingSize; i < frames; i++ {
		s.free = append(s.free, uint64(i)*s.frameSize)
	}
	s.rxAddr = make([]uint64, o.RingSize)
	s.forceCopy = o.Copy
	if o.NoBind {
		return nil
	}
	return s.Bind()
}

// mapRings maps the four rings at the offsets the kernel reports.
func (s *Socket) mapRings(size uint32) error {
	var off unix.XDPMmapOffsets
	ol := uint32(unsafe.Sizeof(off))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_XDP, unix.XDP_MMAP_OFFSETS,
		uintptr(unsafe.Pointer(&off)), uintptr(unsafe.Pointer(&ol)), 0); e != 0 {
		return os.NewSyscallError("getsockopt XDP_MMAP_OFFSETS", e)
	}
	descSize := uint64(unsafe.Sizeof(unix.XDPDesc{}))
	for _, m := range []struct {
		r    *ring
		o    unix.XDPRingOffset
		pgof int64
		each uint64
	}{
		{&s.fill, off.Fr, unix.XDP_UMEM_PGOFF_FILL_RING, 8},
		{&s.comp, off.Cr, unix.XDP_UMEM_PGOFF_COMPLETION_RING, 8},
		{&s.rx, off.Rx, unix.XDP_PGOFF_RX_RING, descSize},
		{&s.tx, off.Tx, unix.XDP_PGOFF_TX_RING, descSize},
	} {
		b, err := unix.Mmap(s.fd, m.pgof, int(m.o.Desc+uint64(size)*m.each), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return os.NewSyscallError("mmap XDP ring", err)
		}
		s.maps = append(s.maps, b)
		base := unsafe.Pointer(&b[0])
		*m.r = ring{
			prod:  (*uint32)(unsafe.Add(base, m.o.Producer)),
			cons:  (*uint32)(unsafe.Add(base, m.o.Consumer)),
			descs: unsafe.Add(base, m.o.Desc),
			mask:  size - 1,
		}
	}
	return nil
}

// Bind binds the socket to its queue (Open does, unless Options.NoBind),
// zero-copy first unless copy mode is asked, with the need-wakeup protocol
// (the user polls the socket each round, which is the fill ring's wakeup).
// A queue another socket holds fails with EBUSY.
func (s *Socket) Bind() error {
	forceCopy := s.forceCopy
	sa := &unix.SockaddrXDP{Flags: unix.XDP_USE_NEED_WAKEUP | unix.XDP_ZEROCOPY, Ifindex: uint32(s.ifindex), QueueID: uint32(s.queue)}
	err := errors.New("copy mode asked")
	if !forceCopy {
		err = unix.Bind(s.fd, sa)
	}
	if err != nil {
		sa.Flags = unix.XDP_USE_NEED_WAKEUP | unix.XDP_COPY
		if err := unix.Bind(s.fd, sa); err != nil {
			return os.NewSyscallError(fmt.Sprintf("bind AF_XDP to ifindex %d queue %d", s.ifindex, s.queue), err)
		}
		return nil
	}
	s.zeroCopy = true
	return nil
}

func setsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	if _, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0); e != 0 {
		return e
	}
	return nil
}

// FD is the socket's descriptor (for the XSKMAP and for poll).
func (s *Socket) FD() int { return s.fd }

// Queue is the interface queue the socket is bound to.
func (s *Socket) Queue() int { return s.queue }

// FrameSize is the size of the socket's UMEM frames: the longest frame
// TxFrame gives.
func (s *Socket) FrameSize() int { return int(s.frameSize) }

// ZeroCopy reports whether the driver gave zero-copy mode.
func (s *Socket) ZeroCopy() bool { return s.zeroCopy }

// Pending reports whether the RX ring holds frames not yet taken.
func (s *Socket) Pending() bool { return atomic.LoadUint32(s.rx.prod) != s.rx.cachedCons }

// Receive takes up to max received frames off the RX ring and returns how
// many; Frame(i) is the i-th. They stay valid until Release.
func (s *Socket) Receive(max int) int {
	avail := atomic.LoadUint32(s.rx.prod) - s.rx.cachedCons
	n := min(int(avail), max, len(s.rxAddr))
	for i := range n {
		d := s.rx.desc(s.rx.cachedCons + uint32(i))
		s.rxAddr[i] = d.Addr
		s.rxAddr[i] |= uint64(d.Len) << 48 // kept with the address: UMEM offsets fit in 48 bits
	}
	return n
}

// Frame returns the i-th frame of the last Receive.
func (s *Socket) Frame(i int) []byte {
	a := s.rxAddr[i]
	off, l := a&(1<<48-1), a>>48
	return s.umem[off : off+l : off+l]
}

// Release returns the n frames of the last Receive to the kernel (fill
// ring) and frees their RX descriptors.
func (s *Socket) Release(n int) {
	if n == 0 {
		return
	}
	for i := range n {
		off := s.rxAddr[i] & (1<<48 - 1)
		*s.fill.addr(s.fill.cachedProd + uint32(i)) = off &^ (s.frameSize - 1)
	}
	s.fill.cachedProd += uint32(n)
	atomic.StoreUint32(s.fill.prod, s.fill.cachedProd)
	s.rx.cachedCons += uint32(n)
	atomic.StoreUint32(s.rx.cons, s.rx.cachedCons)
}

// reap takes the sent frames off the completion ring into the free list.
func (s *Socket) reap() {
	n := atomic.LoadUint32(s.comp.prod) - s.comp.cachedCons
	for i := range n {
		s.free = append(s.free, *s.comp.addr(s.comp.cachedCons + i)&^(s.frameSize-1))
	}
	s.comp.cachedCons += n
	atomic.StoreUint32(s.comp.cons, s.comp.cachedCons)
}

// TxFrame returns a free frame to build a reply in, or nil when every TX
// frame is in flight (after kicking the kernel once to complete some).
func (s *Socket) TxFrame() []byte {
	if len(s.free) == 0 {
		s.reap()
	}
	if len(s.free) == 0 {
		s.Kick()
		s.reap()
	}
	if len(s.free) == 0 {
		return nil
	}
	a := s.free[len(s.free)-1]
	return s.umem[a : a+s.frameSize : a+s.frameSize]
}

// Transmit queues the first n bytes of the frame TxFrame returned last.
// The kernel sends it at the next Kick.
func (s *Socket) Transmit(n int) {
	a := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	d := s.tx.desc(s.tx.cachedProd)
	d.Addr, d.Len, d.Options = a, uint32(n), 0
	s.tx.cachedProd++
	atomic.StoreUint32(s.tx.prod, s.tx.cachedProd)
	s.txQueued++
}

// Kick tells the kernel to send what is queued on the TX ring: one sendto
// per call, repeated while the kernel reports more to do (copy mode sends a
// bounded number per call). It reports the errno of a failed send, if any.
func (s *Socket) Kick() unix.Errno {
	if s.txQueued == 0 {
		return 0
	}
	for range 64 { // bounded: a ring's worth in copy mode's batches of 32, and then some
		_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
		switch e {
		case 0:
		case unix.EAGAIN, unix.EBUSY, unix.EINTR:
			s.reap()
		default:
			return e
		}
		if atomic.LoadUint32(s.tx.cons) == s.tx.cachedProd {
			s.txQueued = 0
			return 0
		}
	}
	return unix.EAGAIN
}

// Stats reads the kernel's counts (XDP_STATISTICS).
func (s *Socket) Stats() (Stats, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return Stats{}, os.ErrClosed
	}
	var st unix.XDPStatistics
	l := uint32(unsafe.Sizeof(st))
	if _, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(s.fd), unix.SOL_XDP, unix.XDP_STATISTICS,
		uintptr(unsafe.Pointer(&st)), uintptr(unsafe.Pointer(&l)), 0); e != 0 {
		return Stats{}, os.NewSyscallError("getsockopt XDP_STATISTICS", e)
	}
	return Stats{st.Rx_dropped, st.Rx_invalid_descs, st.Rx_ring_full, st.Rx_fill_ring_empty_descs, st.Tx_invalid_descs, st.Tx_ring_empty_descs}, nil
}

// Close unmaps the rings and UMEM and closes the socket.
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return os.ErrClosed
	}
	s.closed = true
	for _, m := range s.maps {
		_ = unix.Munmap(m)
	}
	s.maps = nil
	err := unix.Close(s.fd)
	if s.umem != nil {
		_ = unix.Munmap(s.umem)
		s.umem = nil
	}
	return err
}

// Package netnstest gives tests throwaway Linux network namespaces, as
// net/http/httptest gives them servers: namespaces created under names of
// their own (shardd-ROLE-PID-N, unique in the run and among concurrent
// runs) and deleted by those names when the test ends, whatever its outcome;
// veth links between them; addresses, routes (ECMP too) and sysctls inside
// them; commands run in them (`ip netns exec`); and code run on an OS
// thread moved into one, so that the sockets it opens (UDP, TCP, AF_XDP,
// raw) belong there. One test process can so play client, router and
// servers of a small network, or drive traffic over a real Ethernet device
// (XDP, GRO) with NewPair.
//
// Traffic never leaves the namespaces a test creates: they hold no device
// but their loopback and the veth ends the test made between them, and
// deleting a namespace deletes its devices. A test deletes only the
// namespaces it created, so tests may run at the same time as others that
// use namespaces.
//
// It is for tests only, and only on Linux (the package is empty elsewhere).
// It needs root and ip (iproute2): New skips the test without them, unless
// SHARDD_REQUIRE_TOOLS=1 (CI), where it fails it. Helpers that take a
// testing.TB fail the test that calls them.
package netnstest

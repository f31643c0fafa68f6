// Package netns builds throwaway Linux network namespaces for tests:
// namespaces the test creates under names of its own and removes by name
// when it ends, veth links between them, addresses, routes and sysctls
// inside them, commands run in them (`ip netns exec`), and sockets opened in
// them from a locked OS thread, so that one test process can play client,
// router and servers of a small network that no packet leaves.
//
// It is imported only by _test.go files, and only on Linux. Helpers take a
// testing.TB and fail the test that calls them.
package netns

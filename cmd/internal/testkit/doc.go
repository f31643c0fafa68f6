// Package testkit holds the helpers that the tests of the commands under
// cmd/ wrote several times: building a command once and lazily, running it
// as a process and reading its JSON log, exchanging datagrams, steady
// senders, sockets bound beside a daemon's, scraping /metrics and attacking
// it, NDJSON files, and files planted where a daemon writes.
//
// It is imported only by _test.go files: nothing in it is part of a
// command. Helpers take a testing.TB and fail the test that calls them.
package testkit

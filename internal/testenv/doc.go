// Package testenv starts real services (redis-server, versitygw as an S3
// server) on free loopback ports for tests, and tears them down afterwards.
//
// Tests use StartRedis and StartS3, which register cleanup on the test.
// TestMain functions that share one server per package use the *Process
// variants and call the returned stop function themselves.
//
// Servers run in their own process group, which stop kills as a whole, so a
// test run leaves no processes behind. Binaries missing from the machine fail
// the test with a pointer to scripts/test.sh, which installs them.
//
// AWS Glue has no server that runs here: package gluetest is a stand-in
// for it at the HTTP boundary.
package testenv

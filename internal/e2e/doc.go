// Package e2e runs the whole system as its users do: redis-server, an
// S3-compatible server (versitygw), the scheduler command and worker
// processes, all real OS processes on loopback ports, then checks the run
// history, the catalog and the output table against what the sample
// generator wrote.
package e2e

// Package storagetest holds the acceptance test every storage.Bucket backend
// must pass, so the local-folder backend and S3 behave the same for the code
// above them.
package storagetest

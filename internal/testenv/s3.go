package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// S3Server is a running versitygw serving a temporary folder as S3. Clients
// must use path-style addressing: the endpoint is a bare loopback address.
type S3Server struct {
	Endpoint  string // http://127.0.0.1:PORT
	AccessKey string
	SecretKey string
	Region    string
	Dir       string // the served folder; each top-level folder is a bucket
}

// StartS3 starts versitygw for tb on a free loopback port. The server is
// killed and its folder removed when tb finishes.
func StartS3(tb testing.TB) S3Server {
	tb.Helper()
	srv, stop, err := StartS3Process()
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(stop)
	return srv
}

// StartS3Process starts versitygw on a fresh temporary folder and waits until
// it answers HTTP. The caller must call stop, which kills the server and
// removes the folder; stop is safe to call more than once.
//
// The binary is $SLUICE_VERSITYGW, else versitygw on PATH, else
// versitygw in the Go bin folder (where go install puts it).
func StartS3Process() (srv S3Server, stop func(), err error) {
	bin, err := versitygwPath()
	if err != nil {
		return S3Server{}, nil, err
	}
	dir, err := os.MkdirTemp("", "sluice-s3-")
	if err != nil {
		return S3Server{}, nil, fmt.Errorf("make s3 folder: %w", err)
	}
	err = retryExited(func() (err error) {
		srv, stop, err = startVersitygw(bin, dir)
		return err
	})
	if err != nil {
		_ = os.RemoveAll(dir)
		return S3Server{}, nil, err
	}
	stopServer := stop
	stop = func() {
		stopServer()
		_ = os.RemoveAll(dir)
	}
	return srv, stop, nil
}

func startVersitygw(bin, dir string) (S3Server, func(), error) {
	srv := S3Server{
		AccessKey: "sluicetest",
		SecretKey: "sluicetestsecret",
		Region:    "us-east-1",
		Dir:       dir,
	}
	addr := "127.0.0.1:" + strconv.Itoa(FreePort())
	srv.Endpoint = "http://" + addr
	cmd := exec.Command(bin, "--port", addr, "--region", srv.Region, "--quiet", "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+srv.AccessKey, "ROOT_SECRET_KEY="+srv.SecretKey)
	p, err := startProcess("versitygw", cmd)
	if err != nil {
		return S3Server{}, nil, err
	}
	// Any HTTP answer, even 403 for an unsigned request, means it is serving.
	err = p.waitReady(10*time.Second, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.Endpoint+"/", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		return resp.Body.Close()
	})
	if err != nil {
		p.stop()
		return S3Server{}, nil, err
	}
	return srv, p.stop, nil
}

func versitygwPath() (string, error) {
	if p := os.Getenv("SLUICE_VERSITYGW"); p != "" {
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	// go install puts binaries in GOBIN, or else the first GOPATH entry's bin,
	// which is often not on PATH.
	if out, err := exec.Command("go", "env", "GOBIN", "GOPATH").Output(); err == nil {
		gobin, gopath, _ := strings.Cut(strings.TrimRight(string(out), "\n"), "\n")
		if gobin == "" && gopath != "" {
			gobin = filepath.Join(filepath.SplitList(gopath)[0], "bin")
		}
		if gobin != "" {
			p := filepath.Join(gobin, "versitygw")
			if _, err := os.Stat(p); err == nil {
				return p, nil
			}
		}
	}
	return "", errors.New("versitygw not found via $SLUICE_VERSITYGW, PATH or the Go bin folder; run ./scripts/test.sh, which installs it")
}

// Client returns an S3 client for the server, path-style, with its root
// credentials.
func (s S3Server) Client() *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(s.Endpoint),
		Region:       s.Region,
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket creates bucket name through the S3 API, failing tb on error.
func (s S3Server) CreateBucket(tb testing.TB, name string) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		tb.Fatalf("testenv: create bucket %s: %v", name, err)
	}
}

// NewBucket creates a bucket with a fresh random name and returns the name,
// so each test starts from an empty bucket even on a shared server.
func (s S3Server) NewBucket(tb testing.TB) string {
	tb.Helper()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "sluice-test-" + hex.EncodeToString(b[:])
	s.CreateBucket(tb, name)
	return name
}

// Package fault marks errors that no retry can fix: a bad configuration, a
// missing bucket, refused credentials, a run that the safety checks
// refuse. Code that knows an error is permanent wraps it with Permanent;
// the one place that decides about retries (the worker's task middleware)
// asks IsPermanent and fails the step at once instead of backing off.
package fault

import "errors"

// ErrPermanent matches (errors.Is) every error wrapped by Permanent.
var ErrPermanent = errors.New("permanent error")

// Permanent marks err as not worth retrying. Its message is err's; errors.Is
// and errors.As still see err.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err, or an error it wraps, is permanent.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

type permanent struct{ error }

func (p permanent) Unwrap() error        { return p.error }
func (p permanent) Is(target error) bool { return target == ErrPermanent }

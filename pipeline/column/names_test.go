package column

import (
	"reflect"
	"testing"
)

func TestColumnName(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"messageId":                        "message_id",
		"context.device.model":             "context_device_model",
		"context.device.adTrackingEnabled": "context_device_ad_tracking_enabled",
		"userID":                           "user_id",
		"HTTPStatus":                       "http_status",
		"os2Name":                          "os2_name",
		"already_snake":                    "already_snake",
		"with-dash.and space":              "with_dash_and_space",
		"_metadata.bundled":                "_metadata_bundled",
		"ünï":                              "__n__", // one "_" per non-ASCII byte
		"a..b":                             "a___b", // empty segment
		"UPPER":                            "upper",
	}
	for in, want := range cases {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestResolveNamesCollisions(t *testing.T) {
	t.Parallel()
	paths := []string{
		"context.device.ad_tracking_enabled",
		"context.device.adTrackingEnabled",
		"context_device.adTrackingEnabled",
		"a_b_2", // natural owner of a_b_2: the suffix must skip it
		"a.b",
		"a_b",
		"timestamp_utc", // generated columns own their names
		"event",
	}
	names, coll := ResolveNames(paths, []string{"timestamp", "timestamp_utc"})
	want := map[string]string{
		"context.device.adTrackingEnabled":   "context_device_ad_tracking_enabled", // 'T' < '_'
		"context.device.ad_tracking_enabled": "context_device_ad_tracking_enabled_2",
		"context_device.adTrackingEnabled":   "context_device_ad_tracking_enabled_3",
		"a.b":                                "a_b",
		"a_b":                                "a_b_3",
		"a_b_2":                              "a_b_2",
		"timestamp_utc":                      "timestamp_utc_2",
		"event":                              "event",
	}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("names:\n got %v\nwant %v", names, want)
	}
	if len(coll) != 4 {
		t.Errorf("collisions = %v, want 4", coll)
	}
	// Input order must not matter.
	rev := make([]string, len(paths))
	for i, p := range paths {
		rev[len(paths)-1-i] = p
	}
	names2, _ := ResolveNames(rev, []string{"timestamp", "timestamp_utc"})
	if !reflect.DeepEqual(names, names2) {
		t.Errorf("order dependent: %v vs %v", names, names2)
	}
}

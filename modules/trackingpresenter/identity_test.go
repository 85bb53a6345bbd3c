package trackingpresenter

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestEaterID(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		eats, yataxi string
		want         string
		bad          string // the header named by the error, "" when valid
	}{
		{"", "", "", ""},
		{"user_id=42", "", "42", ""},
		{"partner_user_id=42", "", "42", ""},
		{"", "eats_user_id=42", "42", ""},
		{"personal_phone_id=p1, user_id=42, personal_email_id=m1", "", "42", ""},
		{" user_id = 42 ,", "", "42", ""},
		{"partner_user_id=7, user_id=42", "", "42", ""}, // user_id first
		{"user_id=42,user_id=42", "", "42", ""},
		{"user_id=42", "eats_user_id=7", "42", ""}, // X-Eats-User names an eater: it wins
		{"partner_user_id=5, foo=1", "eats_user_id=7", "5", ""},
		{"personal_phone_id=p1", "eats_user_id=7", "7", ""}, // names no eater: falls through
		{"foo=bar", "bogus=1", "", ""},
		{"personal_phone_id=p1", "garbage", "", headerYaTaxiUser}, // consulted, so validated
		{"personal_phone_id=p1", "eats_user_id=", "", headerYaTaxiUser},
		{"garbage", "eats_user_id=7", "", headerEatsUser}, // consulted first
		{"user_id=", "eats_user_id=7", "", headerEatsUser},
		{"foo=bar", "", "", ""},
		{"", "bogus=1", "", ""},
		{"   ", "eats_user_id=7", "7", ""}, // blank header = absent
		{"garbage", "", "", headerEatsUser},
		{"user_id", "", "", headerEatsUser},
		{"=42", "", "", headerEatsUser},
		{"user_id=", "", "", headerEatsUser},
		{"user_id=1, user_id=2", "", "", headerEatsUser},
		{"", "eats_user_id=", "", headerYaTaxiUser},
		{"", "eats_user_id 42", "", headerYaTaxiUser},
		{"user_id=42", "garbage", "42", ""}, // not consulted
		{"user_id=42", "eats_user_id=", "42", ""},
		{"user_id=42; partner_user_id=1", "", "", headerEatsUser},
	} {
		got, err := eaterID(tc.eats, tc.yataxi)
		if tc.bad == "" {
			require.NoError(t, err, "%q %q", tc.eats, tc.yataxi)
			require.Equal(t, tc.want, got, "%q %q", tc.eats, tc.yataxi)
			continue
		}
		var ie *identityError
		require.ErrorAs(t, err, &ie, "%q %q", tc.eats, tc.yataxi)
		require.Equal(t, tc.bad, ie.header)
	}
}

// The rule of DESIGN §4.1 as properties: headers are consulted in order
// until one names an eater; a consulted header that is malformed is an
// error naming it; one never consulted is not validated.
func FuzzEaterID(f *testing.F) {
	f.Add("user_id=42, personal_phone_id=x", "")
	f.Add("", "eats_user_id=7")
	f.Add("garbage", "eats_user_id=")
	f.Add("personal_phone_id=x", "eats_user_id=7")
	f.Add("user_id=42", "garbage")
	f.Fuzz(func(t *testing.T, eats, yataxi string) {
		id, err := eaterID(eats, yataxi)
		if err != nil {
			var ie *identityError
			require.ErrorAs(t, err, &ie)
			require.Empty(t, id)
		} else if id != "" {
			require.NotContains(t, id, ",")
			require.NotContains(t, id, "=")
		}
		// X-Eats-User alone decides whenever it names an eater or is
		// malformed; otherwise X-YaTaxi-User alone decides.
		first, firstErr := eaterID(eats, "")
		if firstErr != nil || first != "" {
			require.Equal(t, first, id)
			require.Equal(t, firstErr, err)
			if first != "" {
				require.Contains(t, eats, first, "the id comes from X-Eats-User")
			}
			return
		}
		second, secondErr := eaterID("", yataxi)
		require.Equal(t, second, id)
		require.Equal(t, secondErr, err)
		if second != "" {
			require.Contains(t, yataxi, second, "the id comes from X-YaTaxi-User")
		}
	})
}

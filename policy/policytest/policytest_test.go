package policytest_test

import (
	"testing"

	"weft.dev/weft/policy"
	"weft.dev/weft/policy/policytest"
)

func TestPolicyParses(t *testing.T) {
	for _, rules := range []int{0, 10, 500} {
		if _, err := policy.Parse([]byte(policytest.Policy(rules))); err != nil {
			t.Fatalf("Policy(%d): %v", rules, err)
		}
	}
}

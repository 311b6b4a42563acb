package kube

import (
	"testing"

	metav1alpha1 "istio.io/api/meta/v1alpha1"
	istionet "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// TestRosenMarkReadsBothObjectShapes: the Reconciled condition Rosen wrote
// is read back from Istio's typed objects and from unstructured ones.
func TestRosenMarkReadsBothObjectShapes(t *testing.T) {
	vs := &istionet.VirtualService{Status: metav1alpha1.IstioStatus{Conditions: []*metav1alpha1.IstioCondition{
		{Type: "Other", Status: "False", Reason: "Rejected", Message: "not ours"},
		{Type: ConditionReconciled, Status: "False", Reason: "Rejected", Message: rejectedPrefix + "spec.http[0]: bad"},
	}}}
	if msg, ok := rosenMark(vs); !ok || msg != "spec.http[0]: bad" {
		t.Errorf("typed: %q %v", msg, ok)
	}
	u := &unstructured.Unstructured{Object: map[string]any{"status": map[string]any{"conditions": []any{
		map[string]any{"type": ConditionReconciled, "status": "True", "reason": "Accepted", "message": "used by Rosen"},
	}}}}
	if msg, ok := rosenMark(u); !ok || msg != "" {
		t.Errorf("unstructured accepted: %q %v", msg, ok)
	}
	if _, ok := rosenMark(&istionet.VirtualService{}); ok {
		t.Error("an object without Rosen's condition has a mark")
	}
}

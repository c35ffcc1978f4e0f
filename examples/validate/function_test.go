package validate

import (
	"github.com/zclconf/go-cty/cty"
	ctyfunction "github.com/zclconf/go-cty/cty/function"
)

type function = ctyfunction.Function

// containsFunc is Terraform's contains(list, value), for evaluating a
// validation condition.
var containsFunc = ctyfunction.New(&ctyfunction.Spec{
	Params: []ctyfunction.Parameter{
		{Name: "list", Type: cty.DynamicPseudoType},
		{Name: "value", Type: cty.DynamicPseudoType},
	},
	Type: ctyfunction.StaticReturnType(cty.Bool),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		for it := args[0].ElementIterator(); it.Next(); {
			_, v := it.Element()
			if v.Equals(args[1]).True() {
				return cty.True, nil
			}
		}
		return cty.False, nil
	},
})

package signals

// PriceTableDate is the date the built-in price table was taken from
// https://aws.amazon.com/lambda/pricing/ (first tier of on-demand
// duration pricing, without the free tier, without ephemeral storage).
const PriceTableDate = "2024-06-01"

// price is the on-demand price of one GB-second (GiB of configured memory
// times seconds of billed duration) and of one request, in USD.
type price struct {
	GBSecond float64
	Request  float64
}

// Standard first-tier prices shared by the regions listed in priceRegions.
var (
	priceX86 = price{GBSecond: 0.0000166667, Request: 0.0000002}
	priceARM = price{GBSecond: 0.0000133334, Request: 0.0000002}
)

// priceRegions are the regions where the standard price applies. Regions
// not listed have different prices or none known here: estimated cost is
// then omitted unless SLIPSTREAM_PRICE_* overrides are set.
var priceRegions = map[string]bool{
	"us-east-1": true, "us-east-2": true, "us-west-1": true, "us-west-2": true,
	"ca-central-1": true, "sa-east-1": true,
	"eu-west-1": true, "eu-west-2": true, "eu-west-3": true, "eu-central-1": true, "eu-north-1": true,
	"ap-south-1": true, "ap-northeast-1": true, "ap-northeast-2": true, "ap-northeast-3": true,
	"ap-southeast-1": true, "ap-southeast-2": true,
}

// lookupPrice returns the price for a region and host.arch value
// ("amd64" or "arm64"), applying the overrides (zero = not set).
func lookupPrice(region, arch string, overrideGBSecond, overrideRequest float64) (price, bool) {
	var p price
	ok := false
	if priceRegions[region] {
		switch arch {
		case "amd64":
			p, ok = priceX86, true
		case "arm64":
			p, ok = priceARM, true
		}
	}
	if overrideGBSecond > 0 {
		p.GBSecond, ok = overrideGBSecond, true
		if overrideRequest <= 0 && p.Request == 0 {
			p.Request = priceX86.Request
		}
	}
	if overrideRequest > 0 {
		p.Request = overrideRequest
	}
	return p, ok
}

// cost is the estimated charge of one invocation in USD.
func (p price) cost(billedMs, memoryMB int64) float64 {
	gbSeconds := float64(billedMs) / 1000 * float64(memoryMB) / 1024
	return gbSeconds*p.GBSecond + p.Request
}

package config

import "go.uber.org/fx"

// Module provides the Platform config from the Environment in the graph.
var Module = fx.Module("config",
	fx.Provide(ParsePlatform),
)

"""ka-ching (point of sale): stock counts through its stock import (docs/destinations.md, "ka-ching")."""

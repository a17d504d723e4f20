package tlp

// The STIX marking-definition ids of the TLP levels: TLP 1.0 (STIX 2.1
// §7.2.1.4) and TLP 2.0 (the OASIS objects of the TLP 2.0 extension). This
// is their one definition; stixmap writes the objects, taxii reads posted
// markings by them.
const (
	MarkingV1White = "marking-definition--613f2e26-407d-48c7-9eca-b8e91df99dc9"
	MarkingV1Green = "marking-definition--34098fce-860f-48ae-8e50-ebd3cc5e41da"
	MarkingV1Amber = "marking-definition--f88d31f6-486f-44da-b317-01333bde0b82"
	MarkingV1Red   = "marking-definition--5e57c739-391a-4eb3-b6be-7d15ca92d5ed"

	MarkingV2Clear       = "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
	MarkingV2Green       = "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
	MarkingV2Amber       = "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
	MarkingV2AmberStrict = "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
	MarkingV2Red         = "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"
)

var markingLevels = map[string]Level{
	MarkingV1White: Clear, MarkingV1Green: Green, MarkingV1Amber: Amber, MarkingV1Red: Red,
	MarkingV2Clear: Clear, MarkingV2Green: Green, MarkingV2Amber: Amber, MarkingV2AmberStrict: AmberStrict, MarkingV2Red: Red,
}

// FromMarking returns the level a TLP marking-definition id stands for, and
// false for any other id.
func FromMarking(id string) (Level, bool) {
	l, ok := markingLevels[id]
	return l, ok
}

"""Export formats that load without kerasdl (SavedModel: :mod:`.savedmodel`)."""

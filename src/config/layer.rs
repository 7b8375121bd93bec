//! Values with their origin, and the three layers they come from.

use std::collections::BTreeMap;
use std::fmt;

use super::field::Field;
use crate::setting::{Origin, Setting};

/// The values of one source. They are raw text, secrets included (`client_secret` from the
/// environment or the file): `Debug` shows which fields are set and where from, never a value.
#[derive(Clone, Default)]
pub(crate) struct Layer {
    rank: u8,
    values: BTreeMap<Field, Setting<String>>,
    lists: BTreeMap<Field, Setting<Vec<String>>>,
}

impl fmt::Debug for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let origins = |map: &mut fmt::DebugMap<'_, '_>| {
            for (field, setting) in &self.values {
                map.entry(&field.name(), &setting.origin.to_string());
            }
            for (field, setting) in &self.lists {
                map.entry(&field.name(), &setting.origin.to_string());
            }
        };
        let mut map = f.debug_map();
        origins(&mut map);
        map.finish()
    }
}

impl Layer {
    pub(crate) fn from_env(env: super::Env<'_>) -> Self {
        let mut layer = Self {
            rank: 1,
            ..Self::default()
        };
        for &field in Field::ALL {
            if let Some(var) = field.spec().env
                && let Some(value) = env(var)
            {
                layer.set(field, value, Origin::Env(var.to_owned()));
            }
        }
        layer
    }

    pub(crate) fn from_flags(fields: &[(Field, String)]) -> Self {
        let mut layer = Self::default();
        for (field, value) in fields {
            layer.set(*field, value.clone(), Origin::Flag(field.flag()));
        }
        layer
    }

    pub(crate) fn file() -> Self {
        Self {
            rank: 2,
            ..Self::default()
        }
    }

    pub(crate) fn set(&mut self, field: Field, value: String, origin: Origin) {
        self.values.insert(field, Setting { value, origin });
    }

    pub(crate) fn set_list(&mut self, field: Field, values: Vec<String>, origin: Origin) {
        self.lists.insert(field, Setting { value: values, origin });
    }

    pub(crate) fn get(&self, field: Field) -> Option<Setting<String>> {
        self.values.get(&field).cloned()
    }

    /// 0 for flags, 1 for the environment, 2 for the file: lower wins.
    pub(crate) fn rank(&self) -> u8 {
        self.rank
    }

    pub(crate) fn has_any(&self, fields: &[Field]) -> bool {
        fields.iter().any(|f| self.values.contains_key(f))
    }

    pub(crate) fn any_origin(&self, fields: &[Field]) -> Origin {
        fields
            .iter()
            .find_map(|f| self.values.get(f).map(|s| s.origin.clone()))
            .unwrap_or(Origin::Default)
    }
}

/// Flags over environment over file.
#[derive(Debug)]
pub(crate) struct Layers {
    pub(crate) flags: Layer,
    pub(crate) env: Layer,
    pub(crate) file: Layer,
}

impl Layers {
    fn all(&self) -> [&Layer; 3] {
        [&self.flags, &self.env, &self.file]
    }

    pub(crate) fn get(&self, field: Field) -> Option<Setting<String>> {
        self.all().iter().find_map(|l| l.get(field))
    }

    pub(crate) fn list(&self, field: Field) -> Option<Setting<Vec<String>>> {
        self.all().iter().find_map(|l| l.lists.get(&field).cloned())
    }

    /// The highest layer that sets any of `fields`.
    pub(crate) fn highest_with(&self, fields: &[Field]) -> Option<&Layer> {
        self.all().into_iter().find(|l| l.has_any(fields))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_names_fields_and_origins_never_values() {
        let layer =
            super::Layer::from_env(&|name| (name == "AZURE_CLIENT_SECRET").then(|| "Xq58Q~never.printed".to_owned()));
        let shown = format!("{layer:?}");
        assert!(
            shown.contains("client_secret") && shown.contains("AZURE_CLIENT_SECRET"),
            "{shown}"
        );
        assert!(!shown.contains("never.printed"), "{shown}");
    }
}

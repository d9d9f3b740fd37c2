//! A fixed-capacity history kept in time order in an inline array: no heap, so a
//! series' memory is its `size_of`, and every window is one contiguous slice.

/// The newest `N` items, oldest first. Pushing onto a full ring drops the oldest (a
/// memmove of at most a few hundred bytes, once per bucket).
#[derive(Clone, Debug)]
pub struct Ring<T, const N: usize> {
    items: [T; N],
    len: usize,
}

impl<T: Copy + Default, const N: usize> Default for Ring<T, N> {
    fn default() -> Self {
        Ring {
            items: [T::default(); N],
            len: 0,
        }
    }
}

impl<T: Copy + Default, const N: usize> Ring<T, N> {
    pub fn push(&mut self, item: T) {
        if self.len == N {
            self.items.copy_within(1.., 0);
            self.items[N - 1] = item;
        } else {
            self.items[self.len] = item;
            self.len += 1;
        }
    }

    pub fn as_slice(&self) -> &[T] {
        &self.items[..self.len]
    }

    pub fn last(&self) -> Option<&T> {
        self.as_slice().last()
    }

    pub fn len(&self) -> usize {
        self.len
    }
}

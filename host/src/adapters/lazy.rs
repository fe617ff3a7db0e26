//! A value made once, by the first that needs it, or ahead of time in the background: the
//! AWS SDK's configuration and clients, which the cold start does not wait for (building
//! them took 1.6 ms; the first event needs them only once the guest has admitted it).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use tokio::sync::OnceCell;

type Make<T> = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = T> + Send>> + Send + Sync>;

/// A shared value made at most once.
pub struct Lazy<T> {
    cell: Arc<OnceCell<T>>,
    make: Option<Make<T>>,
}

impl<T> Clone for Lazy<T> {
    fn clone(&self) -> Self {
        Lazy { cell: self.cell.clone(), make: self.make.clone() }
    }
}

impl<T: Send + Sync + 'static> Lazy<T> {
    /// A value made by `make` when first needed.
    pub fn new<F, Fut>(make: F) -> Lazy<T>
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        Lazy { cell: Arc::new(OnceCell::new()), make: Some(Arc::new(move || Box::pin(make()))) }
    }

    /// A value at hand.
    pub fn ready(value: T) -> Lazy<T> {
        Lazy { cell: Arc::new(OnceCell::new_with(Some(value))), make: None }
    }

    /// The value, made now if nobody has made it yet (others wait for the one making it).
    pub async fn get(&self) -> &T {
        let make = self.make.clone();
        self.cell
            .get_or_init(|| async move {
                match make {
                    Some(make) => make().await,
                    None => unreachable!("a ready value is always set"),
                }
            })
            .await
    }

    /// Starts making the value in the background.
    pub fn warm(&self) {
        if self.cell.initialized() {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            this.get().await;
        });
    }
}

impl<T: Send + Sync + 'static> From<T> for Lazy<T> {
    fn from(value: T) -> Lazy<T> {
        Lazy::ready(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn made_once_whoever_asks_first() {
        static MADE: AtomicU32 = AtomicU32::new(0);
        let lazy = Lazy::new(|| async { MADE.fetch_add(1, Ordering::SeqCst) + 41 });
        lazy.warm();
        let (a, b) = tokio::join!(lazy.get(), lazy.clone().get_owned());
        assert_eq!((*a, b), (41, 41));
        assert_eq!(MADE.load(Ordering::SeqCst), 1);
        assert_eq!(*Lazy::ready(7).get().await, 7);
    }

    impl<T: Send + Sync + Clone + 'static> Lazy<T> {
        async fn get_owned(self) -> T {
            self.get().await.clone()
        }
    }
}
